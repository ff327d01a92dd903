
/// HTTP(S) to one API server through libcurl: client-certificate TLS (which URLSession cannot do on
/// Linux), HTTP/2 when offered (every request and watch multiplexed on one connection), and
/// cancellable, back-pressured streaming for watches. All transfers run on the one `CurlMulti` thread.
public final class CurlTransport: Sendable {
    public let settings: TransportSettings
    private let multi: CurlMulti
    /// Body bytes a stream holds for a lagging consumer before the transfer is paused.
    let streamBufferLimit: Int

    public convenience init(settings: TransportSettings) {
        self.init(settings: settings, streamBufferLimit: 1 << 20)
    }

    init(settings: TransportSettings, multi: CurlMulti = .shared, streamBufferLimit: Int) {
        self.settings = settings
        self.multi = multi
        self.streamBufferLimit = streamBufferLimit
    }

    /// One request, its whole response buffered. Cancelling the task aborts the transfer at once.
    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        try await start(Transfer(streaming: false), request, timeout: settings.requestTimeout)
    }

    /// A streaming request (a watch). Returns once the response head arrives: a non-2xx answer throws
    /// a `KubeError` from its body; otherwise the body arrives chunk by chunk. Ending iteration (or
    /// cancelling the consuming task) aborts the transfer.
    public func stream(_ request: HTTPRequest, timeout: Duration?) async throws -> ResponseBody {
        let transfer = Transfer(streaming: true, bufferLimit: streamBufferLimit)
        // Owns the transfer from here: if the head never comes (or we throw), dropping it aborts the transfer.
        let reader = BodyReader(transfer: transfer, multi: multi)
        _ = try await start(transfer, request, timeout: timeout)
        return ResponseBody(reader: reader)
    }

    private func start(_ transfer: Transfer, _ request: HTTPRequest, timeout: Duration?) async throws -> HTTPResponse {
        try Task.checkCancellation()
        let spec = CurlRequest(request: request, settings: settings, timeout: timeout)
        let multi = self.multi
        return try await withTaskCancellationHandler {
            multi.submit(.add(transfer, spec))
            return try await transfer.response()
        } onCancel: {
            // Wakes the waiting task now; the driver drops the easy handle as soon as it wakes.
            if transfer.cancel() { multi.submit(.remove(transfer)) }
        }
    }
}

extension TransportSettings {
    /// `server` parsed once: scheme, host, port and path prefix (servers may sit behind a path, e.g. Rancher).
    var parsedServer: (scheme: String, host: String, port: Int, prefix: String) {
        var rest = Substring(server)
        var scheme = "https"
        if let colon = rest.firstIndex(of: ":"), rest[colon...].hasPrefix("://") {
            scheme = rest[..<colon].lowercased()
            rest = rest[rest.index(colon, offsetBy: 3)...]
        }
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var prefix = String(rest[authorityEnd...])
        while prefix.hasSuffix("/") { prefix.removeLast() }
        var host = String(authority)
        var port = scheme == "http" ? 80 : 443
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = String(authority[...close])
            if let colon = authority[close...].firstIndex(of: ":"), let p = Int(authority[authority.index(after: colon)...]) { port = p }
        } else if let colon = authority.lastIndex(of: ":"), let p = Int(authority[authority.index(after: colon)...]) {
            host = String(authority[..<colon])
            port = p
        }
        return (scheme, host, port, prefix)
    }

    func requestURL(path: String) -> String {
        let s = parsedServer
        let host = tlsServerName ?? s.host
        return "\(s.scheme)://\(host):\(s.port)\(s.prefix)\(path)"
    }

    /// With `tls-server-name`, the URL names the certificate's host (so curl verifies it and sends it as
    /// SNI) while CONNECT_TO sends the bytes to the real address.
    var connectToOverride: String? {
        guard let name = tlsServerName else { return nil }
        let s = parsedServer
        return "\(name):\(s.port):\(s.host):\(s.port)"
    }
}

extension Duration {
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
