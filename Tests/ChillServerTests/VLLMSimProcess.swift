import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A `vllm-sim` process for tests (see docs/VLLM-SIM.md).
///
///     let sim = try await VLLMSim.launch(args: ["--tokens-per-second", "50"])
///     defer { sim.kill() }
///     let r = try await SimHTTP.request(port: sim.port, "GET", "/v1/models")
///
/// The binary is `$VLLM_SIM_BINARY`, or `vllm-sim` next to the test bundle (`swift test` builds it),
/// or `<package>/.build/debug/vllm-sim` (`swift build --product vllm-sim`). The simulator's output goes
/// to a temporary file (never a pipe that could fill up), readable as `output`. It runs with
/// `--exit-on-stdin-close`, so it also goes away when the test process dies, and `deinit` kills it.
final class VLLMSim: @unchecked Sendable {
    enum LaunchError: Error, CustomStringConvertible {
        case binaryNotFound([String])
        case exitedBeforeServing(status: Int32, output: String)
        case timedOut(seconds: Double, output: String)

        var description: String {
            switch self {
            case .binaryNotFound(let tried):
                "vllm-sim binary not found (run `swift build --product vllm-sim`); tried: \(tried.joined(separator: ", "))"
            case .exitedBeforeServing(let status, let output):
                "vllm-sim exited with status \(status) before serving; output:\n\(output)"
            case .timedOut(let seconds, let output):
                "vllm-sim did not start serving within \(seconds)s; output:\n\(output)"
            }
        }
    }

    let process: Process
    let logFile: URL
    let arguments: [String]
    private let stdinPipe: Pipe
    private let lock = NSLock()
    private var _port: Int?

    /// The port it serves on (known once `waitUntilServing` returned; 0 before that).
    var port: Int { lock.withLock { _port ?? 0 } }
    var baseURL: String { "http://127.0.0.1:\(port)" }
    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// Everything the simulator printed so far (stdout and stderr).
    var output: String {
        (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
    }

    // MARK: starting

    /// Starts the simulator and waits until it serves. Adds `--port 0` (a free port, read back from
    /// the startup line) unless `args` names a port.
    static func launch(args: [String] = [], timeout: Double = 30) async throws -> VLLMSim {
        let sim = try spawn(args: args)
        do {
            try await sim.waitUntilServing(timeout: timeout)
        } catch {
            sim.kill()
            throw error
        }
        return sim
    }

    /// Starts the simulator without waiting for it (e.g. to watch its startup phase).
    static func spawn(args: [String] = []) throws -> VLLMSim {
        var arguments = args
        if !args.contains(where: { $0 == "--port" || $0.hasPrefix("--port=") }) {
            arguments += ["--port", "0"]
        }
        arguments.append("--exit-on-stdin-close")
        return try VLLMSim(binary: binaryPath(), arguments: arguments)
    }

    private init(binary: String, arguments: [String]) throws {
        self.arguments = arguments
        logFile = FileManager.default.temporaryDirectory
            .appendingPathComponent("vllm-sim-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let out = try FileHandle(forWritingTo: logFile)
        stdinPipe = Pipe()
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardOutput = out
        process.standardError = out
        process.standardInput = stdinPipe
        try process.run()
        try? out.close()
    }

    deinit {
        if process.isRunning { simSendSignal(process.processIdentifier, SIGKILL) }
        try? stdinPipe.fileHandleForWriting.close()
        try? FileManager.default.removeItem(at: logFile)
    }

    /// Waits for the "serving … on http://host:port" line and returns the port. Throws when the
    /// process exits first or `timeout` seconds pass.
    @discardableResult
    func waitUntilServing(timeout: Double = 30) async throws -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let text = output
            if let port = Self.servingPort(in: text) {
                lock.withLock { _port = port }
                return port
            }
            if !process.isRunning {
                // The line may have been written just before exiting.
                if let port = Self.servingPort(in: output) {
                    lock.withLock { _port = port }
                    return port
                }
                throw LaunchError.exitedBeforeServing(status: process.terminationStatus, output: output)
            }
            if Date() > deadline { throw LaunchError.timedOut(seconds: timeout, output: text) }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    static func servingPort(in text: Substring) -> Int? {
        guard let range = text.range(of: "vllm-sim: serving ") else { return nil }
        let line = text[range.upperBound...].prefix(while: { $0 != "\n" })
        guard let url = line.range(of: " on http://") else { return nil }
        let hostPort = line[url.upperBound...]
        guard let colon = hostPort.lastIndex(of: ":") else { return nil }
        return Int(hostPort[hostPort.index(after: colon)...])
    }

    static func servingPort(in text: String) -> Int? { servingPort(in: text[...]) }

    // MARK: stopping

    /// Closes the simulator's standard input, as the death of the test process would: with
    /// `--exit-on-stdin-close` (always passed) it exits with status 0.
    func closeStandardInput() {
        try? stdinPipe.fileHandleForWriting.close()
    }

    /// Sends SIGKILL (no wait). Safe to call more than once.
    func kill() {
        if process.isRunning { simSendSignal(process.processIdentifier, SIGKILL) }
    }

    /// Sends `signal` (SIGTERM by default) and waits for the exit; SIGKILL after `timeout` seconds.
    /// Returns the exit status (or the terminating signal's number, as Foundation reports it).
    @discardableResult
    func terminate(signal: Int32 = SIGTERM, timeout: Double = 5) async -> Int32 {
        if process.isRunning { simSendSignal(process.processIdentifier, signal) }
        if let status = await waitForExit(timeout: timeout) { return status }
        kill()
        return await waitForExit(timeout: 5) ?? -1
    }

    /// The exit status once the process ended, or nil if it still runs after `timeout` seconds.
    func waitForExit(timeout: Double) async -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    // MARK: helpers

    /// Where the simulator binary is; see the type's documentation.
    static func binaryPath(filePath: String = #filePath) throws -> String {
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["VLLM_SIM_BINARY"], !env.isEmpty {
            candidates.append(env)
        }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        candidates.append(exe.deletingLastPathComponent().appendingPathComponent("vllm-sim").path)
        candidates.append(Bundle.main.bundleURL.appendingPathComponent("vllm-sim").path)
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("vllm-sim").path)
        let packageRoot = URL(fileURLWithPath: filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(packageRoot.appendingPathComponent(".build/debug/vllm-sim").path)
        candidates.append(packageRoot.appendingPathComponent(".build/release/vllm-sim").path)
        for path in candidates where FileManager.default.isExecutableFile(atPath: path) {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue {
                return path
            }
        }
        throw LaunchError.binaryNotFound(candidates)
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SimHTTP.Failure.socket(errno) }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw SimHTTP.Failure.socket(errno) }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

/// A tiny blocking HTTP/1.1 client over a raw socket (run off the cooperative pool), made for
/// watching streams: it keeps each chunk of a chunked response separately, with its arrival time.
enum SimHTTP {
    enum Failure: Error, CustomStringConvertible {
        case socket(Int32)
        case connectionRefused
        case timedOut
        case malformed(String)

        var description: String {
            switch self {
            case .socket(let e): "socket error \(e) (\(String(cString: strerror(e))))"
            case .connectionRefused: "connection refused"
            case .timedOut: "timed out"
            case .malformed(let m): "malformed response: \(m)"
            }
        }
    }

    struct Response: Sendable {
        var status: Int
        /// Header names lower-cased.
        var headers: [(name: String, value: String)]
        var body: [UInt8]
        /// For `transfer-encoding: chunked`: each chunk's data, in order.
        var chunks: [[UInt8]]
        /// Seconds since the request was sent at which each chunk was complete.
        var chunkTimes: [Double]
        /// True when the body ended properly (length reached or the last chunk seen).
        var complete: Bool

        var text: String { String(decoding: body, as: UTF8.self) }
        var chunkTexts: [String] { chunks.map { String(decoding: $0, as: UTF8.self) } }
        func header(_ name: String) -> String? {
            headers.first { $0.name == name.lowercased() }?.value
        }
        /// The SSE `data:` payloads, in order.
        var sseData: [String] {
            text.components(separatedBy: "\n\n").compactMap { event in
                event.hasPrefix("data: ") ? String(event.dropFirst(6)) : nil
            }
        }
        func json() throws -> [String: Any] {
            guard let obj = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
                throw Failure.malformed("body is not a JSON object: \(text)")
            }
            return obj
        }
    }

    /// Sends one request (with `Connection: close`) and reads the response. With `stopAfterChunks`,
    /// closes the connection after that many chunks arrived (a client that goes away mid-stream).
    static func request(
        port: Int, _ method: String, _ path: String, body: String? = nil,
        headers: [String: String] = [:], timeout: Double = 15, stopAfterChunks: Int? = nil
    ) async throws -> Response {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Response, Error>) in
            DispatchQueue.global().async {
                cont.resume(
                    with: Result {
                        try blockingRequest(
                            port: port, method: method, path: path, body: body, headers: headers,
                            timeout: timeout, stopAfterChunks: stopAfterChunks)
                    })
            }
        }
    }

    /// Whether a TCP connection to 127.0.0.1:port is accepted now.
    static func canConnect(port: Int) -> Bool {
        guard let fd = try? connect(port: port, timeout: 2) else { return false }
        close(fd)
        return true
    }

    static func connect(port: Int, timeout: Double) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure.socket(errno) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: .init((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                posixConnect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if rc != 0 {
            let e = errno
            close(fd)
            if e == ECONNREFUSED { throw Failure.connectionRefused }
            throw Failure.socket(e)
        }
        return fd
    }

    private static func blockingRequest(
        port: Int, method: String, path: String, body: String?, headers: [String: String],
        timeout: Double, stopAfterChunks: Int?
    ) throws -> Response {
        let fd = try connect(port: port, timeout: timeout)
        defer { close(fd) }
        let bodyBytes = Array((body ?? "").utf8)
        var req = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        if body != nil {
            req += "Content-Type: application/json\r\nContent-Length: \(bodyBytes.count)\r\n"
        }
        for (k, v) in headers { req += "\(k): \(v)\r\n" }
        req += "\r\n"
        let out = Array(req.utf8) + bodyBytes
        var sent = 0
        while sent < out.count {
            let n = out[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure.socket(errno)
            }
            sent += n
        }
        let start = Date()
        let deadline = start.addingTimeInterval(timeout)

        var buffer: [UInt8] = []
        var eof = false
        /// Reads more bytes; false at end of stream.
        func fill() throws -> Bool {
            if eof { return false }
            if Date() > deadline { throw Failure.timedOut }
            var tmp = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = tmp.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n > 0 {
                    buffer.append(contentsOf: tmp[0..<n])
                    return true
                }
                if n == 0 {
                    eof = true
                    return false
                }
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw Failure.timedOut }
                if errno == ECONNRESET {
                    eof = true
                    return false
                }
                throw Failure.socket(errno)
            }
        }
        func find(_ pattern: [UInt8], from: Int) -> Int? {
            guard buffer.count >= pattern.count + from else { return nil }
            var i = from
            while i + pattern.count <= buffer.count {
                if buffer[i] == pattern[0], Array(buffer[i..<(i + pattern.count)]) == pattern { return i }
                i += 1
            }
            return nil
        }

        let crlf: [UInt8] = [13, 10]
        var headerEnd: Int?
        while headerEnd == nil {
            headerEnd = find([13, 10, 13, 10], from: 0)
            if headerEnd == nil, try !fill() { throw Failure.malformed("connection closed in the headers") }
        }
        let headText = String(decoding: buffer[0..<headerEnd!], as: UTF8.self)
        buffer.removeFirst(headerEnd! + 4)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw Failure.malformed("status line: \(headText)")
        }
        var responseHeaders: [(name: String, value: String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            responseHeaders.append(
                (line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var response = Response(
            status: status, headers: responseHeaders, body: [], chunks: [], chunkTimes: [], complete: false)

        if method == "HEAD" || status == 204 || status == 304 || (100..<200).contains(status) {
            response.complete = true
            return response
        }
        if response.header("transfer-encoding")?.lowercased().contains("chunked") == true {
            while true {
                var lineEnd = find(crlf, from: 0)
                while lineEnd == nil {
                    if try !fill() { return response }
                    lineEnd = find(crlf, from: 0)
                }
                let sizeText = String(decoding: buffer[0..<lineEnd!], as: UTF8.self)
                    .split(separator: ";").first.map(String.init) ?? ""
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                    throw Failure.malformed("chunk size \(sizeText)")
                }
                buffer.removeFirst(lineEnd! + 2)
                if size == 0 {
                    response.complete = true
                    return response
                }
                while buffer.count < size + 2 {
                    if try !fill() { return response }
                }
                let chunk = Array(buffer[0..<size])
                buffer.removeFirst(size + 2)
                response.chunks.append(chunk)
                response.chunkTimes.append(Date().timeIntervalSince(start))
                response.body += chunk
                if let stop = stopAfterChunks, response.chunks.count >= stop { return response }
            }
        } else if let lengthText = response.header("content-length"), let length = Int(lengthText) {
            while buffer.count < length {
                if try !fill() { return response }
            }
            response.body = Array(buffer[0..<length])
            response.complete = true
        } else {
            while try fill() {}
            response.body = buffer
            response.complete = true
        }
        return response
    }
}

private func simSendSignal(_ pid: Int32, _ sig: Int32) {
    _ = kill(pid, sig)
}

private func posixConnect(_ fd: Int32, _ addr: UnsafePointer<sockaddr>, _ len: socklen_t) -> Int32 {
    connect(fd, addr, len)
}
