import CCurl
import Synchronization

/// HTTP(S) to one API server through libcurl: client-certificate TLS (which URLSession cannot do on
/// Linux), HTTP/2 when offered, pooled connections, and cancellable streaming for watches.
public final class CurlTransport: Sendable {
    public let settings: TransportSettings
    private let idleHandles = Mutex<[CurlHandle]>([])
    private static let globalInit: Void = { _ = curl_global_init(Int(CURL_GLOBAL_ALL)) }()

    public init(settings: TransportSettings) {
        _ = Self.globalInit
        self.settings = settings
    }

    deinit {
        for handle in idleHandles.withLock({ $0 }) { curl_easy_cleanup(handle.raw) }
    }

    /// One request, its whole response buffered. Cancelling the task aborts the transfer.
    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let transfer = Transfer(streaming: false)
        try Task.checkCancellation()
        let result = await withTaskCancellationHandler {
            await BlockingThread.run { self.perform(request, transfer: transfer, timeout: self.settings.requestTimeout) }
        } onCancel: {
            transfer.cancel()
        }
        if let error = result { throw error }
        return HTTPResponse(status: transfer.status, headers: transfer.headers, body: transfer.body)
    }

    /// A streaming request (a watch). Returns once the response head arrives: a non-2xx answer throws
    /// a `KubeError` from its body; otherwise the body arrives chunk by chunk. Ending iteration (or
    /// cancelling the consuming task) aborts the transfer.
    public func stream(_ request: HTTPRequest, timeout: Duration?) async throws -> AsyncThrowingStream<[UInt8], any Error> {
        let (chunks, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        let transfer = Transfer(streaming: true, chunks: continuation)
        continuation.onTermination = { _ in transfer.cancel() }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (head: CheckedContinuation<Void, any Error>) in
                transfer.setHead(head)
                BlockingThread.spawn {
                    let error = self.perform(request, transfer: transfer, timeout: timeout)
                    transfer.finish(error: error)
                }
            }
        } onCancel: {
            transfer.cancel()
        }
        return chunks
    }

    // MARK: - The blocking part, on a dedicated thread

    private func perform(_ request: HTTPRequest, transfer: Transfer, timeout: Duration?) -> (any Error)? {
        let handle = idleHandles.withLock { $0.popLast() } ?? CurlHandle(raw: curl_easy_init())
        var reusable = true
        defer {
            if reusable { idleHandles.withLock { if $0.count < 8 { $0.append(handle) } else { curl_easy_cleanup(handle.raw) } } }
            else { curl_easy_cleanup(handle.raw) }
        }
        curl_easy_reset(handle.raw)
        let h = handle.raw
        let url = settings.requestURL(path: request.path)
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }
        var lists: [UnsafeMutablePointer<curl_slist>?] = []
        defer { lists.forEach { curl_slist_free_all($0) } }

        chill_setopt_string(h, CURLOPT_URL, url)
        chill_setopt_pointer(h, CURLOPT_ERRORBUFFER, errorBuffer)
        chill_setopt_long(h, CURLOPT_NOSIGNAL, 1)
        chill_setopt_long(h, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))
        chill_setopt_string(h, CURLOPT_ACCEPT_ENCODING, "")
        chill_setopt_long(h, CURLOPT_TCP_KEEPALIVE, 1)
        chill_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, settings.connectTimeout.milliseconds)
        if let timeout { chill_setopt_long(h, CURLOPT_TIMEOUT_MS, max(1, timeout.milliseconds)) }
        applyTLS(h, lists: &lists)
        if let proxy = settings.proxyURL { chill_setopt_string(h, CURLOPT_PROXY, proxy) }

        chill_setopt_string(h, CURLOPT_CUSTOMREQUEST, request.method)
        if request.method == "HEAD" { chill_setopt_long(h, CURLOPT_NOBODY, 1) }
        if let body = request.body {
            chill_setopt_off(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
            body.withUnsafeBytes { raw in
                _ = chill_setopt_pointer(h, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: raw.baseAddress ?? UnsafeRawPointer(errorBuffer)))
            }
        }
        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        // curl adds `Expect: 100-continue` to large bodies; the API server doesn't need the round trip.
        for line in request.headers.map({ "\($0.name): \($0.value)" }) + ["Expect:"] {
            headerList = curl_slist_append(headerList, line)
        }
        lists.append(headerList)
        chill_setopt_slist(h, CURLOPT_HTTPHEADER, headerList)

        let context = Unmanaged.passUnretained(transfer).toOpaque()
        chill_setopt_pointer(h, CURLOPT_WRITEDATA, context)
        chill_setopt_write_function(h, { data, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            guard let data, length > 0 else { return 0 }
            return transfer.receive(UnsafeRawBufferPointer(start: data, count: length)) ? length : 0
        })
        chill_setopt_pointer(h, CURLOPT_HEADERDATA, context)
        chill_setopt_header_function(h, { data, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            guard let data else { return 0 }
            transfer.receiveHeader(String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self))
            return length
        })
        chill_setopt_long(h, CURLOPT_NOPROGRESS, 0)
        chill_setopt_pointer(h, CURLOPT_XFERINFODATA, context)
        chill_setopt_xferinfo_function(h, { context, _, _, _, _ in
            Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue().isCancelled ? 1 : 0
        })

        let code = curl_easy_perform(h)
        var status = 0
        chill_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        transfer.status = status
        guard code == CURLE_OK || (code == CURLE_WRITE_ERROR && transfer.isCancelled && status > 0 && transfer.isStreaming) else {
            reusable = false
            if transfer.isCancelled { return CancellationError() }
            let detail = String(cString: errorBuffer)
            var osErrno = 0
            chill_getinfo_long(h, CURLINFO_OS_ERRNO, &osErrno)
            return TransportError(
                url: settings.server, curlCode: Int(code.rawValue),
                detail: Self.describe(code: code, osErrno: osErrno, detail: detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail))
        }
        if transfer.isStreaming && transfer.isCancelled { reusable = false }
        return nil
    }

    private func applyTLS(_ h: UnsafeMutableRawPointer, lists: inout [UnsafeMutablePointer<curl_slist>?]) {
        if var ca = settings.caData {
            ca.withUnsafeMutableBytes { _ = chill_setopt_blob(h, CURLOPT_CAINFO_BLOB, $0.baseAddress, $0.count) }
        } else if let file = settings.caFile {
            chill_setopt_string(h, CURLOPT_CAINFO, file)
        }
        if var cert = settings.clientCertificateData {
            chill_setopt_string(h, CURLOPT_SSLCERTTYPE, "PEM")
            cert.withUnsafeMutableBytes { _ = chill_setopt_blob(h, CURLOPT_SSLCERT_BLOB, $0.baseAddress, $0.count) }
        } else if let file = settings.clientCertificateFile {
            chill_setopt_string(h, CURLOPT_SSLCERT, file)
        }
        if var key = settings.clientKeyData {
            chill_setopt_string(h, CURLOPT_SSLKEYTYPE, "PEM")
            key.withUnsafeMutableBytes { _ = chill_setopt_blob(h, CURLOPT_SSLKEY_BLOB, $0.baseAddress, $0.count) }
        } else if let file = settings.clientKeyFile {
            chill_setopt_string(h, CURLOPT_SSLKEY, file)
        }
        if settings.insecureSkipTLSVerify {
            chill_setopt_long(h, CURLOPT_SSL_VERIFYPEER, 0)
            chill_setopt_long(h, CURLOPT_SSL_VERIFYHOST, 0)
        }
        if let connectTo = settings.connectToOverride {
            let list = curl_slist_append(nil, connectTo)
            lists.append(list)
            chill_setopt_slist(h, CURLOPT_CONNECT_TO, list)
        }
    }

    private static func describe(code: CURLcode, osErrno: Int, detail: String) -> String {
        switch code {
        case CURLE_COULDNT_CONNECT where osErrno == 111 /* ECONNREFUSED */: "connection refused"
        case CURLE_COULDNT_RESOLVE_HOST: "host not found (\(detail))"
        case CURLE_OPERATION_TIMEDOUT: "timed out (\(detail))"
        case CURLE_PEER_FAILED_VERIFICATION: "the server's certificate is not trusted (\(detail))"
        default: detail
        }
    }
}

struct CurlHandle: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
    init(raw: UnsafeMutableRawPointer?) {
        guard let raw else { fatalError("curl_easy_init failed: out of memory") }
        self.raw = raw
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
