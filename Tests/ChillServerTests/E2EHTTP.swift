import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A small blocking HTTP/1.1 client over a raw socket for the end-to-end tests. Every request runs on
/// its own OS thread (never on the cooperative pool or a width-limited dispatch queue), so a hundred
/// requests held by chill-server at once really are a hundred concurrent connections. It keeps each
/// chunk of a chunked response separately with its arrival time (to check SSE is relayed event by
/// event), and can walk away mid-stream or mid-hold (a client that disconnects).
enum E2EHTTP {
    enum Failure: Error, CustomStringConvertible {
        case socket(String, Int32)
        case connectionRefused(Int)
        case timedOut(String)
        case malformed(String)

        var description: String {
            switch self {
            case .socket(let what, let e): "\(what): errno \(e) (\(String(cString: strerror(e))))"
            case .connectionRefused(let port): "connection to 127.0.0.1:\(port) refused"
            case .timedOut(let what): "timed out \(what)"
            case .malformed(let m): "malformed response: \(m)"
            }
        }
    }

    struct Response: Sendable, CustomStringConvertible {
        var status: Int
        /// Header names lower-cased, in order.
        var headers: [(name: String, value: String)]
        var body: [UInt8]
        /// For `transfer-encoding: chunked`: each chunk's data, in order.
        var chunks: [[UInt8]]
        /// Seconds after the request was sent at which each chunk had arrived.
        var chunkTimes: [Double]
        /// The body ended properly (Content-Length reached or the last chunk seen).
        var complete: Bool
        /// Seconds from sending the request to the end of the response.
        var elapsed: Double

        var text: String { String(decoding: body, as: UTF8.self) }
        var chunkTexts: [String] { chunks.map { String(decoding: $0, as: UTF8.self) } }
        func header(_ name: String) -> String? { headers.first { $0.name == name.lowercased() }?.value }
        var isChunked: Bool { header("transfer-encoding")?.lowercased().contains("chunked") == true }

        func json() throws -> [String: Any] {
            guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
                throw Failure.malformed("body is not a JSON object (status \(status)): \(text)")
            }
            return object
        }

        /// `error.message` / `error.type` / `error.code` of an OpenAI-shaped error body.
        func openAIError() throws -> (message: String, type: String, code: String) {
            guard let error = try json()["error"] as? [String: Any] else { throw Failure.malformed("no error object: \(text)") }
            return (error["message"] as? String ?? "", error["type"] as? String ?? "", error["code"] as? String ?? "")
        }

        var description: String { "HTTP \(status) after \(String(format: "%.3f", elapsed))s: \(text.prefix(400))" }
    }

    /// One request with `Connection: close`; the response is read to its end (or `stopAfterChunks`
    /// chunks, after which the client closes the connection: a client that goes away mid-stream).
    static func request(
        port: Int, _ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:],
        timeout: Double = 20, stopAfterChunks: Int? = nil
    ) async throws -> Response {
        try await onThread {
            let connection = try Connection.open(port: port, timeout: timeout)
            defer { connection.close() }
            try connection.send(method, path, body: body, headers: headers)
            return try connection.readResponse(stopAfterChunks: stopAfterChunks)
        }
    }

    /// Runs blocking work on a fresh detached thread and returns its result.
    static func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let thread = Thread { continuation.resume(with: Result { try work() }) }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// A client socket, for tests that need to hold a request open and then walk away.
    final class Connection: @unchecked Sendable {
        let fd: Int32
        let port: Int
        private let timeout: Double
        private var closed = false
        private let lock = NSLock()
        private var buffer: [UInt8] = []
        private var eof = false
        private var sentAt = Date()

        private init(fd: Int32, port: Int, timeout: Double) {
            self.fd = fd
            self.port = port
            self.timeout = timeout
        }

        /// `receiveBuffer` shrinks the socket's receive buffer (a slow client's window fills at once).
        static func open(port: Int, timeout: Double = 20, receiveBuffer: Int32? = nil) throws -> Connection {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw Failure.socket("socket", errno) }
            if var size = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
            // Reads wake up every 200 ms to check the overall deadline.
            var tv = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var sendTimeout = timeval(tv_sec: Int(timeout), tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if rc != 0 {
                let e = errno
                e2eClose(fd)
                if e == ECONNREFUSED { throw Failure.connectionRefused(port) }
                throw Failure.socket("connect", e)
            }
            return Connection(fd: fd, port: port, timeout: timeout)
        }

        func send(_ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:], keepAlive: Bool = false) throws {
            let bodyBytes = Array((body ?? "").utf8)
            var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
            if !keepAlive { request += "Connection: close\r\n" }
            if body != nil || method == "POST" {
                if headers.keys.contains(where: { $0.lowercased() == "content-type" }) == false {
                    request += "Content-Type: application/json\r\n"
                }
                request += "Content-Length: \(bodyBytes.count)\r\n"
            }
            for (name, value) in headers { request += "\(name): \(value)\r\n" }
            request += "\r\n"
            let bytes = Array(request.utf8) + bodyBytes
            var sent = 0
            while sent < bytes.count {
                let n = bytes[sent...].withUnsafeBytes { e2eSend(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Failure.socket("send", errno)
                }
                sent += n
            }
            sentAt = Date()
        }

        /// Bytes received but not yet consumed by a `readResponse`.
        var bufferedByteCount: Int { buffer.count }

        /// Closes the socket (idempotent). Closing with unread data makes the kernel send RST.
        func close() {
            lock.withLock {
                guard !closed else { return }
                closed = true
                e2eClose(fd)
            }
        }

        /// Reads and discards at most `bytes` bytes already received or arriving (one recv); returns how many.
        func drainSome(_ bytes: Int) throws -> Int {
            if !buffer.isEmpty { let n = min(bytes, buffer.count); buffer.removeFirst(n); return n }
            guard try fill(deadline: Date().addingTimeInterval(timeout)) else { return 0 }
            let n = min(bytes, buffer.count)
            buffer.removeFirst(n)
            return n
        }

        /// Whether the peer closed the connection (a zero-byte read) within `timeout` seconds.
        func peerClosed(within timeout: Double) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if eof { return true }
                do { _ = try fill(deadline: deadline) } catch { return false }
            }
            return eof
        }

        /// Reads more bytes; false at end of stream. Throws after the deadline.
        private func fill(deadline: Date) throws -> Bool {
            if eof { return false }
            var scratch = [UInt8](repeating: 0, count: 65536)
            while true {
                if Date() > deadline { throw Failure.timedOut("reading from 127.0.0.1:\(port)") }
                let n = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n > 0 {
                    buffer.append(contentsOf: scratch[0..<n])
                    return true
                }
                if n == 0 {
                    eof = true
                    return false
                }
                if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK { continue }
                if errno == ECONNRESET {
                    eof = true
                    return false
                }
                throw Failure.socket("recv", errno)
            }
        }

        private func find(_ pattern: [UInt8]) -> Int? {
            guard buffer.count >= pattern.count else { return nil }
            var i = 0
            while i + pattern.count <= buffer.count {
                if buffer[i] == pattern[0], buffer[i..<(i + pattern.count)].elementsEqual(pattern) { return i }
                i += 1
            }
            return nil
        }

        func readResponse(stopAfterChunks: Int? = nil, method: String = "GET") throws -> Response {
            let deadline = Date().addingTimeInterval(timeout)
            var headerEnd = find([13, 10, 13, 10])
            while headerEnd == nil {
                if try !fill(deadline: deadline) { throw Failure.malformed("connection closed before the response headers") }
                headerEnd = find([13, 10, 13, 10])
            }
            let headText = String(decoding: buffer[0..<headerEnd!], as: UTF8.self)
            buffer.removeFirst(headerEnd! + 4)
            var lines = headText.components(separatedBy: "\r\n")
            let statusLine = lines.removeFirst().split(separator: " ")
            guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw Failure.malformed("status line in \(headText)") }
            var headers: [(name: String, value: String)] = []
            for line in lines {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers.append((line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
            }
            var response = Response(status: status, headers: headers, body: [], chunks: [], chunkTimes: [], complete: false, elapsed: 0)
            if method == "HEAD" || status == 204 || status == 304 {
                response.complete = true
                response.elapsed = Date().timeIntervalSince(sentAt)
                return response
            }
            if response.isChunked {
                while true {
                    var lineEnd = find([13, 10])
                    while lineEnd == nil {
                        if try !fill(deadline: deadline) { response.elapsed = Date().timeIntervalSince(sentAt); return response }
                        lineEnd = find([13, 10])
                    }
                    let sizeText = String(decoding: buffer[0..<lineEnd!], as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
                    guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                        throw Failure.malformed("chunk size \(sizeText)")
                    }
                    buffer.removeFirst(lineEnd! + 2)
                    if size == 0 {
                        response.complete = true
                        response.elapsed = Date().timeIntervalSince(sentAt)
                        return response
                    }
                    while buffer.count < size + 2 {
                        if try !fill(deadline: deadline) { response.elapsed = Date().timeIntervalSince(sentAt); return response }
                    }
                    let chunk = Array(buffer[0..<size])
                    buffer.removeFirst(size + 2)
                    response.chunks.append(chunk)
                    response.chunkTimes.append(Date().timeIntervalSince(sentAt))
                    response.body += chunk
                    if let stop = stopAfterChunks, response.chunks.count >= stop {
                        response.elapsed = Date().timeIntervalSince(sentAt)
                        return response
                    }
                }
            } else if let lengthText = response.header("content-length"), let length = Int(lengthText) {
                while buffer.count < length {
                    if try !fill(deadline: deadline) { response.elapsed = Date().timeIntervalSince(sentAt); return response }
                }
                response.body = Array(buffer[0..<length])
                buffer.removeFirst(length)
                response.complete = true
            } else {
                while try fill(deadline: deadline) {}
                response.body = buffer
                buffer = []
                response.complete = true
            }
            response.elapsed = Date().timeIntervalSince(sentAt)
            return response
        }
    }
}

/// Bounded polling: checks `condition` every `interval` until it holds or `timeout` passes.
enum E2EWait {
    struct TimedOut: Error, CustomStringConvertible {
        var what: String
        var last: String
        var description: String { "timed out waiting for \(what)" + (last.isEmpty ? "" : "; last seen: \(last)") }
    }

    static func until(
        _ what: String, timeout: Duration = .seconds(15), interval: Duration = .milliseconds(20),
        _ condition: () async throws -> (ok: Bool, seen: String)
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        var last = ""
        while true {
            let (ok, seen) = try await condition()
            if ok { return }
            last = seen
            guard ContinuousClock.now < deadline else { throw TimedOut(what: what, last: last) }
            try await Task.sleep(for: interval)
        }
    }
}

private func e2eClose(_ fd: Int32) { _ = close(fd) }

private func e2eSend(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int, _ flags: Int32) -> Int {
    send(fd, buffer, count, flags)
}
