import Foundation
import Testing
@testable import ChillServer

/// Bad HTTP: what the parser rejects, slow and stalled clients, HTTP/1.0, pipelining, bodies that
/// never end. Every answer is OpenAI-shaped JSON; the server answers /health afterwards.
@Suite(.serialized) struct ProxyHTTPBadInputTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// A whole chat completion request for the served model, as bytes on the wire would read.
    static func rawChat() -> String {
        let chat = E2E.chat()
        return "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(chat.utf8.count)\r\n\r\n\(chat)"
    }

    /// Sends `burst` in one write on a fresh connection, then reads `answers` responses from it.
    static func pipelined(_ burst: String, answers: Int, to chill: E2EChill) async throws -> [E2EHTTP.Response] {
        try await E2EHTTP.onThread {
            let connection = try E2EHTTP.Connection.open(port: chill.port, timeout: 30)
            defer { connection.close() }
            try connection.sendRaw(bytes(burst))
            return try (0..<answers).map { _ in try connection.readResponse() }
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: [
        ("one 100 KB header", "X-Bomb: \(String(repeating: "b", count: 100_000))\r\n"),
        ("4000 small headers", (0..<4000).map { "X-H\($0): \(String(repeating: "v", count: 20))\r\n" }.joined()),
    ])
    func aHeaderBombIs431(kind: String, headers: String) async throws {
        try await BadInput.withChill { chill in
            let r = try await BadInput.raw(chill, Self.bytes("GET /v1/models HTTP/1.1\r\nHost: x\r\n\(headers)\r\n"))
            try BadInput.expectError(r, status: 431, type: "invalid_request_error", code: "request_headers_too_large")
            #expect(r.header("connection") == "close", "\(kind)")
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: [
        ("a request line that is not HTTP", "GARBAGE\r\n\r\n"),
        ("an unknown method", "BREW /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("a non-numeric Content-Length", "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n{}"),
        ("Content-Length and chunked together (smuggling)",
         "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
        ("an invalid chunk size", "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
        ("a header without a colon", "GET /v1/models HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"),
        ("HTTP/2 preface on HTTP/1", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    ])
    func requestsTheParserRejectsAre400InvalidHTTP(kind: String, request: String) async throws {
        try await BadInput.withChill { chill in
            let r = try await BadInput.raw(chill, Self.bytes(request))
            try BadInput.expectError(r, status: 400, type: "invalid_request_error", code: "invalid_http")
            #expect(r.header("connection") == "close", "\(kind)")
            #expect(try await chill.state() == "ScaledDown", "\(kind) woke the model")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func invalidUTF8InThePathIs400InvalidURL() async throws {
        try await BadInput.withChill { chill in
            let r = try await BadInput.raw(chill, Self.bytes("GET /proxy/") + [0xFF, 0xFE] + Self.bytes(" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), method: "GET")
            try BadInput.expectError(r, status: 400, type: "invalid_request_error", code: "invalid_http", messageContains: "invalid URL")
        }
    }

    /// Slowloris: headers trickled a byte at a time. The connection's idle timeout (configured to 1 s
    /// here) bounds them: a 408 in the OpenAI shape, then the close.
    @Test(.timeLimit(.minutes(1)))
    func slowlorisHeadersGet408AtTheIdleConnectionTimeout() async throws {
        try await BadInput.withChill(extra: ["--idle-connection-timeout", "1s"]) { chill in
            let r = try await E2EHTTP.onThread { () throws -> E2EHTTP.Response in
                let connection = try E2EHTTP.Connection.open(port: chill.port, timeout: 20)
                defer { connection.close() }
                try connection.sendRaw(Self.bytes("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"))
                // One header byte every 50 ms, for as long as the server keeps reading (bounded: 400 bytes).
                for _ in 0..<400 {
                    do { try connection.sendRaw([UInt8(ascii: "X")]) } catch { break }
                    if connection.hasPendingInput(waitingMilliseconds: 50) { break }
                }
                return try connection.readResponse()
            }
            try BadInput.expectError(r, status: 408, type: "invalid_request_error", code: "request_timeout", messageContains: "--idle-connection-timeout")
            #expect(r.header("connection") == "close")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func headersThatStopMidwayGet408AndTheConnectionCloses() async throws {
        try await BadInput.withChill(extra: ["--idle-connection-timeout", "1s"]) { chill in
            let (response, closed) = try await E2EHTTP.onThread { () throws -> (E2EHTTP.Response, Bool) in
                let connection = try E2EHTTP.Connection.open(port: chill.port, timeout: 20)
                defer { connection.close() }
                try connection.sendRaw(Self.bytes("GET /v1/models HTTP/1.1\r\nHost: x\r\nAccept: appl"))
                let response = try connection.readResponse()
                return (response, connection.peerClosed(within: 10))
            }
            try BadInput.expectError(response, status: 408, type: "invalid_request_error", code: "request_timeout")
            #expect(closed)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func anIdleKeepAliveConnectionIsClosedWithoutAStray408() async throws {
        try await BadInput.withChill(extra: ["--idle-connection-timeout", "1s"]) { chill in
            let (first, closed, leftover) = try await E2EHTTP.onThread { () throws -> (E2EHTTP.Response, Bool, Int) in
                let connection = try E2EHTTP.Connection.open(port: chill.port, timeout: 20)
                defer { connection.close() }
                try connection.send("GET", "/health", keepAlive: true)
                let first = try connection.readResponse()
                let closed = connection.peerClosed(within: 10)
                return (first, closed, connection.bufferedByteCount)
            }
            #expect(first.status == 200)
            #expect(closed)
            #expect(leftover == 0, "bytes after the response on an idle connection")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func http10WithoutKeepAliveIsAnsweredThenClosed() async throws {
        try await BadInput.withChill { chill in
            let (response, closed) = try await E2EHTTP.onThread { () throws -> (E2EHTTP.Response, Bool) in
                let connection = try E2EHTTP.Connection.open(port: chill.port, timeout: 20)
                defer { connection.close() }
                try connection.sendRaw(Self.bytes("GET /health HTTP/1.0\r\n\r\n"))
                let response = try connection.readResponse()
                return (response, connection.peerClosed(within: 10))
            }
            #expect(response.status == 200, "\(response)")
            #expect(closed, "an HTTP/1.0 request without keep-alive must close the connection")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func http10KeepAliveIsHonouredAndSaidSo() async throws {
        try await BadInput.withChill { chill in
            let (first, second) = try await E2EHTTP.onThread { () throws -> (E2EHTTP.Response, E2EHTTP.Response) in
                let connection = try E2EHTTP.Connection.open(port: chill.port, timeout: 20)
                defer { connection.close() }
                try connection.sendRaw(Self.bytes("GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"))
                let first = try connection.readResponse()
                try connection.sendRaw(Self.bytes("GET /proxy/version HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"))
                return (first, try connection.readResponse())
            }
            #expect(first.status == 200)
            // An HTTP/1.0 client closes unless the response says keep-alive.
            #expect(first.header("connection")?.lowercased() == "keep-alive", "\(first.headers)")
            #expect(first.header("content-length") != nil)
            #expect(second.status == 200)
            #expect(try second.json()["component"] as? String == "chill-server")
        }
    }

    /// HTTP/1.0 has no chunked encoding: a streamed (SSE) answer is delimited by the close.
    @Test(.timeLimit(.minutes(1)))
    func aStreamToAnHTTP10ClientIsNotChunkedAndEndsWithTheClose() async throws {
        try await BadInput.withChill { chill in
            let body = E2E.chat(stream: true, maxTokens: 3)
            let r = try await BadInput.raw(chill, Self.bytes("POST /v1/chat/completions HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"))
            #expect(r.status == 200, "\(r)")
            #expect(!r.isChunked, "chunked sent to an HTTP/1.0 client: \(r.headers)")
            #expect(r.text.contains("data: [DONE]"), "\(r.text)")
            try await chill.waitForNothingInFlight()
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await BadInput.withChill { chill in
            let unknown = #"{"model":"nope","messages":[]}"#
            // The unknown model comes last: chill answers it as soon as `model` is read, before the
            // body's end, and then closes the connection (saying so) rather than read the rest.
            let burst = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /proxy/version HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
                + "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(unknown.utf8.count)\r\n\r\n\(unknown)"
            let responses = try await Self.pipelined(burst, answers: 4, to: chill)
            #expect(responses.map(\.status) == [200, 200, 200, 404])
            #expect(try responses[0].json()["status"] as? String == "ok")
            #expect(try responses[1].json()["component"] as? String == "chill-server")
            #expect(try responses[2].json()["object"] as? String == "list")
            #expect(try responses[3].openAIError().code == "model_not_found")
            #expect(responses[3].header("connection") == "close")
        }
    }

    /// Requests relayed to vLLM, pipelined in one burst with chill's own: each is answered, in order
    /// (NIO's pipelining handler hands the next request over while the previous response's end is
    /// written; this once left the second one hanging).
    @Test(.timeLimit(.minutes(1)))
    func pipelinedProxiedRequestsAreAnsweredInOrder() async throws {
        try await BadInput.withChill { chill in
            let warm = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat())
            #expect(warm.status == 200)
            let post = Self.rawChat()
            let burst = post + "GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + post + post
            let responses = try await Self.pipelined(burst, answers: 4, to: chill)
            #expect(responses.map(\.status) == [200, 200, 200, 200])
            #expect(try responses[0].json()["object"] as? String == "chat.completion")
            #expect(try responses[1].json()["status"] as? String == "ok")
            #expect(try responses[3].json()["object"] as? String == "chat.completion")
            try await chill.waitForNothingInFlight()
        }
    }

    /// More pipelined requests than chill queues behind a response (256 entries): it stops reading
    /// until the queue drains, then goes on; all are answered, in order.
    @Test(.timeLimit(.minutes(1)))
    func pipelinedRequestsBeyondTheQueueBoundAreAllAnsweredInOrder() async throws {
        try await BadInput.withChill { chill in
            let warm = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat())
            #expect(warm.status == 200)
            let post = Self.rawChat()
            let health = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
            let count = 300
            let burst = (0..<count).map { $0 % 2 == 0 ? post : health }.joined()
            let responses = try await Self.pipelined(burst, answers: count, to: chill)
            #expect(responses.allSatisfy { $0.status == 200 && $0.complete })
            let kinds = try responses.map { try $0.json()["object"] as? String ?? ($0.json()["status"] as? String ?? "?") }
            #expect(kinds == (0..<count).map { $0 % 2 == 0 ? "chat.completion" : "ok" })
            try await chill.waitForNothingInFlight()
        }
    }

    /// chill-server relays vLLM's API; it is not a forward proxy: CONNECT is refused (405, then the
    /// connection closes), not relayed. NIO frames every response to CONNECT without a body, so this
    /// one answer has no OpenAI error body.
    @Test(.timeLimit(.minutes(1)))
    func connectIsRefused405() async throws {
        try await BadInput.withChill { chill in
            let r = try await BadInput.raw(chill, Self.bytes("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), method: "HEAD")
            #expect(r.status == 405, "\(r)")
            #expect(r.header("connection") == "close")
        }
    }

    /// Bytes that are not HTTP after a pipelined request: that request is answered whole first, then
    /// the 400, and the connection closes (the parser's error waits its turn).
    @Test(.timeLimit(.minutes(1)))
    func garbageAfterAPipelinedRequestIsAnsweredAfterIt() async throws {
        try await BadInput.withChill { chill in
            let warm = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat())
            #expect(warm.status == 200)
            let burst = Self.rawChat() + "GARBAGE\r\n\r\n"
            let responses = try await Self.pipelined(burst, answers: 2, to: chill)
            #expect(responses[0].status == 200 && responses[0].complete, "\(responses[0])")
            #expect(try responses[0].json()["object"] as? String == "chat.completion")
            try BadInput.expectError(responses[1], status: 400, type: "invalid_request_error", code: "invalid_http")
            #expect(responses[1].header("connection") == "close")
            try await chill.waitForNothingInFlight()
        }
    }

    /// A chunked body that never ends, held (cold model) and then relayed (warm): the client walking
    /// away frees the hold, the in-flight slot and the held bytes.
    @Test(.timeLimit(.minutes(1)))
    func aChunkedBodyWithoutEndIsFreedWhenTheClientLeaves() async throws {
        // The model takes 3 s to load, so the first requests are held; held bodies share 2 KB.
        try await BadInput.withChill(extra: ["--max-held-bytes", "2048"], sim: ["--startup-seconds", "3"]) { chill in
            let part = #"{"model":"e2e-model","messages":[{"role":"user","content":""# + String(repeating: "a", count: 1200)
            func openEndless() async throws -> E2EHTTP.Connection {
                try await E2EHTTP.onThread {
                    let connection = try E2EHTTP.Connection.open(port: chill.port, timeout: 20)
                    try connection.sendRaw(Self.bytes("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + String(part.utf8.count, radix: 16) + "\r\n" + part + "\r\n"))
                    return connection
                }
            }
            // Cold: held while the model wakes, its 1.2 KB counted against the 2 KB budget.
            let held = try await openEndless()
            try await chill.waitForStats("the endless request held") { E2EChill.int($0["held"]) == 1 }
            held.close()
            try await chill.waitForNothingInFlight(timeout: .seconds(10))
            #expect(try await chill.state() == "Waking", "the model loaded before the test could check the budget")
            // Its bytes were given back: another 1.2 KB request fits in the budget, is held, then served.
            let complete = part + #""}],"max_tokens":2}"#
            let r = try await chill.request("POST", "/v1/chat/completions", body: complete)
            #expect(r.status == 200, "\(r)")
            // Warm: relayed to vLLM, which waits for the rest; in flight until the client leaves.
            let relayed = try await openEndless()
            try await chill.waitForStats("the endless request in flight") { E2EChill.int($0["inFlight"]) == 1 }
            relayed.close()
            try await chill.waitForNothingInFlight(timeout: .seconds(10))
        }
    }
}

extension E2EHTTP.Connection {
    /// Whether the peer has sent something (or closed) within `waitingMilliseconds`.
    func hasPendingInput(waitingMilliseconds: Int32) -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, waitingMilliseconds) > 0
    }
}
