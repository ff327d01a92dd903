import Foundation
import Testing
@testable import Shared

#if canImport(Glibc)
    import Glibc
#endif

/// A watch stream that ends in the middle of an event (a proxy or load balancer cutting the
/// connection): the half line is dropped, never decoded, and the Watcher resumes from the last
/// resourceVersion it saw, without a relist, and delivers the event in full from the new watch.
@Suite struct WatchCutMidEventTests {
    static let list = #"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"10"},"items":[]}"#
    static func event(_ name: String, rv: Int) -> String {
        #"{"type":"ADDED","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"\#(name)","namespace":"default","resourceVersion":"\#(rv)"}}}"#
    }

    @Test(.timeLimit(.minutes(1)))
    func theWatcherResumesAfterACutMidEvent() async throws {
        // 1st watch: one whole event, then half of the next, then the connection is cut.
        // 2nd watch (must resume from rv 11): the cut event in full, then the stream stays open.
        let first = Self.event("one", rv: 11) + "\n"
        let cut = Self.event("two", rv: 12)
        let server = try ScriptedHTTPServer(responses: [
            .whole(Self.list),
            .stream(first + String(cut.prefix(cut.count / 2)), thenClose: true),
            .stream(cut + "\n", thenClose: false),
        ])
        defer { server.stop() }
        let client = KubeClient(configuration: ClientConfiguration(transport: TransportSettings(server: "http://127.0.0.1:\(server.port)"), namespace: "default"))
        var events = client.api(ConfigMap.self).watcher(backoff: Backoff(initial: .milliseconds(20), maximum: .milliseconds(100))).makeAsyncIterator()
        #expect(WatcherTests.names(try await WatcherTests.collect(&events, count: 3)) == ["listed:", "added:one", "added:two"])
        let paths = server.requestPaths
        #expect(paths.count == 3, "\(paths)")
        #expect(paths.count == 3 && paths[1].contains("watch=") && paths[1].contains("resourceVersion=10"), "\(paths)")
        #expect(paths.count == 3 && paths[2].contains("watch=") && paths[2].contains("resourceVersion=11"), "resumed from the wrong place: \(paths)")
    }
}

/// A plain-HTTP server on 127.0.0.1 that answers its connections' requests with a fixed script, one
/// response per request in order (`stream`: chunked, optionally cut without the last chunk).
final class ScriptedHTTPServer: @unchecked Sendable {
    enum Response {
        case whole(String)
        case stream(String, thenClose: Bool)
    }

    let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var paths: [String] = []
    private var script: [Response]
    private var open: [Int32] = []

    var requestPaths: [String] { lock.withLock { paths } }

    init(responses: [Response]) throws {
        script = responses
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound, listen(fd, 16) == 0 else { throw Failure("cannot listen") }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    struct Failure: Error { var message: String; init(_ m: String) { message = m } }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        lock.withLock { for fd in open { shutdown(fd, Int32(SHUT_RDWR)) } }
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            lock.withLock { open.append(fd) }
            Thread { [self] in serve(fd) }.start()
        }
    }

    private func serve(_ fd: Int32) {
        var pending: [UInt8] = []
        var scratch = [UInt8](repeating: 0, count: 4096)
        while true {
            while !pending.isEmpty, let end = headEnd(pending) {
                let head = String(decoding: pending[..<end], as: UTF8.self)
                pending.removeFirst(end + 4)
                let path = head.split(separator: " ").dropFirst().first.map(String.init) ?? ""
                let response: Response? = lock.withLock {
                    paths.append(path)
                    return script.isEmpty ? nil : script.removeFirst()
                }
                switch response {
                case .whole(let body):
                    write(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
                case .stream(let body, let thenClose):
                    write(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + String(body.utf8.count, radix: 16) + "\r\n" + body + "\r\n")
                    if thenClose { close(fd); return }
                    // Left open: the client ends it.
                case nil:
                    close(fd)
                    return
                }
            }
            let n = recv(fd, &scratch, scratch.count, 0)
            if n <= 0 { close(fd); return }
            pending += scratch[0..<n]
        }
    }

    private func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 { return i }
        return nil
    }

    private func write(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }
}
