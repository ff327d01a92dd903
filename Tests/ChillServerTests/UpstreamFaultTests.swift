import Foundation
import Testing
@testable import ChillServer

/// What a client gets when the backend misbehaves after it was sent the request, and on shutdown.
@Suite struct UpstreamFaultTests {
    /// A backend that serves `/health` and `/count`, and closes the connection without answering
    /// anything else, counting what it received.
    static let closingBackend = #"""
    import http.server, json, sys
    counts = {"POST": 0, "GET": 0}
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def log_message(self, *a): pass
        def reply(self, body):
            data = json.dumps(body).encode()
            self.send_response(200); self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data))); self.end_headers(); self.wfile.write(data)
        def do_GET(self):
            if self.path == "/health": return self.reply({})
            if self.path == "/count": return self.reply(counts)
            counts["GET"] += 1; self.close_connection = True
        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            counts["POST"] += 1; self.close_connection = True
    http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
    """#

    @Test(.timeLimit(.minutes(1)))
    func aPostTheBackendReceivedIsNotReplayedAndAGetIsReplayedOnce() async throws {
        let port = try VLLMSim.freePort()
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("closing-backend-\(UUID().uuidString).py")
        try Self.closingBackend.write(to: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: script) }
        let chill = try await E2EChill.start(
            ["--backend", "process", "--command", "python3 \(script.path) \(port)", "--target-port", String(port),
             "--idle-timeout", "5m", "--wake-timeout", "30s", "--served-model-name", E2E.model])
        do {
            let post = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat())
            #expect(post.status == 502, "\(post)")
            #expect(try post.openAIError().code == "backend_closed_connection")
            #expect(try post.openAIError().message.contains("not retried"))

            let get = try await chill.request("GET", "/flaky")
            #expect(get.status == 502, "\(get)")

            let counts = try await E2EHTTP.request(port: port, "GET", "/count").json()
            #expect(counts["POST"] as? Int == 1, "the POST reached the backend once: \(counts)")
            #expect(counts["GET"] as? Int == 2, "the GET was replayed once on a fresh connection: \(counts)")
            #expect(try await chill.stats()["state"] as? String == "Ready", "the model still serves")
        } catch {
            await chill.stop()
            throw error
        }
        await chill.stop()
    }

    /// A backend that writes raw responses: a head with two Content-Lengths for POST, and for GET a
    /// whole response followed by bytes nobody asked for; it counts the connections it accepted.
    static let malformedBackend = #"""
    import socketserver, sys, json
    connections = [0]
    class H(socketserver.StreamRequestHandler):
        def handle(self):
            connections[0] += 1
            while True:
                line = self.rfile.readline()
                if not line: return
                length = 0
                while True:
                    h = self.rfile.readline()
                    if h in (b"\r\n", b""): break
                    if h.lower().startswith(b"content-length:"): length = int(h.split(b":")[1])
                self.rfile.read(length)
                path = line.split()[1]
                if path == b"/health" or path == b"/count":
                    body = json.dumps({"connections": connections[0]}).encode()
                    self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
                elif line.startswith(b"POST"):
                    self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\n{}")
                else:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n\r\n")
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
    """#

    @Test(.timeLimit(.minutes(1)))
    func aMalformedBackendResponseIs502AndBytesAfterAResponseRetireItsConnection() async throws {
        let port = try VLLMSim.freePort()
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("malformed-backend-\(UUID().uuidString).py")
        try Self.malformedBackend.write(to: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: script) }
        let chill = try await E2EChill.start(
            ["--backend", "process", "--command", "python3 \(script.path) \(port)", "--target-port", String(port),
             "--idle-timeout", "5m", "--wake-timeout", "30s", "--served-model-name", E2E.model])
        do {
            let post = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat())
            #expect(post.status == 502, "\(post)")
            #expect(try post.openAIError().code == "backend_closed_connection")
            #expect(try post.openAIError().message.contains("more than one Content-Length"), "\(post)")

            let before = try await chill.request("GET", "/count").json()["connections"] as? Int ?? 0
            let junk = try await chill.request("GET", "/v1/junk")
            #expect(junk.status == 200 && junk.text == "{}", "the response itself is whole: \(junk)")
            let after = try await chill.request("GET", "/count").json()["connections"] as? Int ?? 0
            #expect(after == before + 1, "the connection that carried the extra bytes was not reused (\(before) → \(after))")
            #expect(try await chill.stats()["state"] as? String == "Ready", "the model still serves")
        } catch {
            await chill.stop()
            throw error
        }
        await chill.stop()
    }

    @Test(.timeLimit(.minutes(1)))
    func aBackendThatDoesNotAnswerInTimeIs504() async throws {
        try await ProxyEndToEndTests.withProcessChill(
            idle: "5m", sim: ["--first-token-delay", "5"], extra: ["--upstream-response-timeout", "1s"]
        ) { chill, _ in
            let r = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat(), timeout: 30)
            #expect(r.status == 504, "\(r)")
            #expect(try r.openAIError().code == "upstream_timeout")
            #expect(try r.openAIError().type == "api_error")
            try await chill.waitForNothingInFlight()
        }
    }

    /// SIGTERM with a request held for a wake that cannot finish before the exit: it is answered
    /// 503 + Retry-After at once, not after the (here 5 minute) shutdown grace.
    @Test(.timeLimit(.minutes(1)))
    func heldRequestsAreAnswered503AtOnceOnShutdown() async throws {
        let unusedPort = try VLLMSim.freePort()
        try await ProxyEndToEndTests.withKubeChill(
            autoReady: false, targetPort: unusedPort, extra: ["--wake-timeout", "5m", "--shutdown-grace", "5m"]
        ) { chill, _ in
            let held = Task { try await chill.request("POST", "/v1/chat/completions", body: E2E.chat(), timeout: 120) }
            _ = try await chill.waitForStats("the request held", timeout: .seconds(20)) { E2EChill.int($0["held"]) == 1 }
            let stopping = Task { await chill.stop(timeout: .seconds(120)) }
            let r = try await held.value
            #expect(r.status == 503, "\(r)")
            #expect(try r.openAIError().code == "shutting_down")
            #expect(r.header("retry-after") != nil)
            await stopping.value
        }
    }
}
