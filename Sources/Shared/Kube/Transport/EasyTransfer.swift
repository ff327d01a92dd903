import CCurl

/// What a transfer needs to start; built by the caller, turned into an easy handle on the multi thread.
struct CurlRequest: Sendable {
    var request: HTTPRequest
    var settings: TransportSettings
    var timeout: Duration?
}

/// One easy handle and what curl's callbacks write to. Lives on the `CurlMulti` thread only: created,
/// called back and cleaned up there, never shared with a Swift task (the `Transfer` is the shared part).
final class EasyTransfer {
    let handle: UnsafeMutableRawPointer
    let transfer: Transfer
    private let server: String
    private let errorBuffer: UnsafeMutablePointer<CChar>
    private var lists: [UnsafeMutablePointer<curl_slist>?] = []
    private var status = 0
    private var headerStatus = 0
    private var headers: [(name: String, value: String)] = []
    private var body: [UInt8] = []

    init(_ spec: CurlRequest, transfer: Transfer) {
        guard let handle = curl_easy_init() else { fatalError("curl_easy_init failed: out of memory") }
        self.handle = handle
        self.transfer = transfer
        self.server = spec.settings.server
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        configure(spec)
    }

    /// After curl_multi_remove_handle.
    func cleanup() {
        curl_easy_cleanup(handle)
        lists.forEach { curl_slist_free_all($0) }
        lists = []
        errorBuffer.deallocate()
    }

    private func configure(_ spec: CurlRequest) {
        let h = handle, settings = spec.settings, request = spec.request
        chill_setopt_string(h, CURLOPT_URL, settings.requestURL(path: request.path))
        chill_setopt_pointer(h, CURLOPT_ERRORBUFFER, errorBuffer)
        chill_setopt_long(h, CURLOPT_NOSIGNAL, 1)
        chill_setopt_long(h, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))
        // Wait for a connection being set up rather than open a second one: if it turns out to speak
        // HTTP/2, this transfer becomes one more stream on it.
        chill_setopt_long(h, CURLOPT_PIPEWAIT, 1)
        chill_setopt_string(h, CURLOPT_ACCEPT_ENCODING, "")
        chill_setopt_long(h, CURLOPT_TCP_KEEPALIVE, 1)
        chill_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, settings.connectTimeout.milliseconds)
        if let timeout = spec.timeout { chill_setopt_long(h, CURLOPT_TIMEOUT_MS, max(1, timeout.milliseconds)) }
        applyTLS(settings)
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

        // The multi thread keeps this object alive until the handle is removed.
        let context = Unmanaged.passUnretained(self).toOpaque()
        chill_setopt_pointer(h, CURLOPT_WRITEDATA, context)
        chill_setopt_write_function(h, { data, size, count, context in
            let easy = Unmanaged<EasyTransfer>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            guard let data, length > 0 else { return 0 }
            return easy.receive(UnsafeRawBufferPointer(start: data, count: length))
        })
        chill_setopt_pointer(h, CURLOPT_HEADERDATA, context)
        chill_setopt_header_function(h, { data, size, count, context in
            let easy = Unmanaged<EasyTransfer>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            guard let data else { return 0 }
            easy.receiveHeader(String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self))
            return length
        })
    }

    private func applyTLS(_ settings: TransportSettings) {
        let h = handle
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

    // MARK: - Callbacks (the multi thread, inside curl)

    private var streamsBody: Bool { transfer.isStreaming && (200..<300).contains(status) }

    private func receiveHeader(_ line: String) {
        if line.hasPrefix("HTTP/") {
            headers = []
            let parts = line.split(separator: " ", maxSplits: 2)
            headerStatus = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        } else if line == "\r\n" || line == "\n" {
            // End of a header block; 1xx blocks are followed by the real one.
            if headerStatus >= 200 {
                status = headerStatus
                if streamsBody { transfer.respond(HTTPResponse(status: status, headers: headers, body: [])) }
            }
        } else if let colon = line.firstIndex(of: ":") {
            let name = String(line[..<colon])
            let value = String(line[line.index(after: colon)...]).trimmingWhitespace
            headers.append((name, value))
        }
    }

    /// Bytes taken, 0 to abort, or CURL_WRITEFUNC_PAUSE when the consumer's buffer is full.
    private func receive(_ bytes: UnsafeRawBufferPointer) -> Int {
        if transfer.isCancelled { return 0 }
        guard streamsBody else {
            body.append(contentsOf: bytes)
            return bytes.count
        }
        return transfer.offer(Array(bytes)) ? bytes.count : Int(chill_writefunc_pause())
    }

    // MARK: - Completion

    /// curl reported the transfer done with `code`: hand the outcome to the waiting task.
    func complete(_ code: CURLcode) {
        var responseCode = 0
        chill_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &responseCode)
        if status == 0 { status = responseCode }
        guard code == CURLE_OK else {
            if transfer.isCancelled { transfer.end(with: CancellationError()); return }
            let detail = String(cString: errorBuffer)
            var osErrno = 0
            chill_getinfo_long(handle, CURLINFO_OS_ERRNO, &osErrno)
            transfer.end(with: TransportError(
                url: server, curlCode: Int(code.rawValue),
                detail: Self.describe(code: code, osErrno: osErrno, detail: detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)))
            return
        }
        if !transfer.isStreaming {
            transfer.respond(HTTPResponse(status: status, headers: headers, body: body))
            transfer.end(with: nil)
        } else if streamsBody {
            transfer.end(with: nil)
        } else {
            transfer.end(with: KubeError.fromResponse(code: status, body: body))
        }
    }

    static func describe(code: CURLcode, osErrno: Int, detail: String) -> String {
        switch code {
        case CURLE_COULDNT_CONNECT where osErrno == 111 /* ECONNREFUSED */: "connection refused"
        case CURLE_COULDNT_RESOLVE_HOST: "host not found (\(detail))"
        case CURLE_OPERATION_TIMEDOUT: "timed out (\(detail))"
        case CURLE_PEER_FAILED_VERIFICATION: "the server's certificate is not trusted (\(detail))"
        default: detail
        }
    }
}
