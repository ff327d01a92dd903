import Foundation
import Testing
@testable import ChillServer

/// Bad request bodies. chill-server reads a body only as far as its top-level `"model"` (it never
/// parses the rest), so: what stops routing is answered by chill-server (400/404/413, OpenAI shape,
/// before any wake); what routes (the model is known) is the backend's to judge, and vLLM's answer
/// is relayed as is.
@Suite(.serialized) struct ProxyBodyBadInputTests {
    @Test(.timeLimit(.minutes(1)))
    func jsonThatEndsBeforeTheModelIsFoundIs400InvalidJSON() async throws {
        try await BadInput.withChill { chill in
            let r = try await BadInput.post(chill, #"{"messages":[{"role":"user","content":"hi"}"#)
            try BadInput.expectError(r, status: 400, type: "invalid_request_error", code: "invalid_json")
            #expect(try await chill.state() == "ScaledDown", "a body that cannot route woke the model")
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: ["42", "null", "true", #"{"name":"x"}"#, #"["e2e-model"]"#, "-1.5e3"])
    func aModelThatIsNotAStringIs400InvalidModel(value: String) async throws {
        try await BadInput.withChill { chill in
            let r = try await BadInput.post(chill, #"{"model":\#(value),"messages":[]}"#)
            try BadInput.expectError(r, status: 400, type: "invalid_request_error", code: "invalid_model", messageContains: "\"model\" must be a string")
            #expect(try await chill.state() == "ScaledDown")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func anUnknownModelIs404NamingTheServedOnes() async throws {
        try await BadInput.withChill { chill in
            let r = try await BadInput.post(chill, #"{"model":"gpt-5","messages":[{"role":"user","content":"hi"}]}"#)
            try BadInput.expectError(r, status: 404, type: "invalid_request_error", code: "model_not_found",
                                     messageContains: "The model `gpt-5` does not exist. Available models: \(E2E.model)")
            #expect(try await chill.state() == "ScaledDown")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func invalidUTF8InTheModelNameIs404WithTheBytesReplaced() async throws {
        try await BadInput.withChill { chill in
            let body = Array(#"{"model":"e2e-"#.utf8) + [0xFF, 0xC3] + Array(#"model","messages":[]}"#.utf8)
            let r = try await BadInput.post(chill, bytes: body)
            try BadInput.expectError(r, status: 404, type: "invalid_request_error", code: "model_not_found",
                                     messageContains: "The model `e2e-\u{FFFD}\u{FFFD}model` does not exist")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aModelNameOver512BytesIs400InvalidModel() async throws {
        try await BadInput.withChill { chill in
            let r = try await BadInput.post(chill, #"{"model":"\#(String(repeating: "m", count: 100_000))","messages":[]}"#)
            try BadInput.expectError(r, status: 400, type: "invalid_request_error", code: "invalid_model")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func deepNestingBeforeAnUnknownModelIsScannedWithoutRecursion() async throws {
        try await BadInput.withChill { chill in
            let depth = 200_000
            let body = #"{"tools":"# + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + #","model":"nope"}"#
            let r = try await BadInput.post(chill, body)
            try BadInput.expectError(r, status: 404, type: "invalid_request_error", code: "model_not_found")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aJSONEscapedModelNameRoutesLikeItsDecodedForm() async throws {
        try await BadInput.withChill { chill in
            // "e2e\u002dmodel" is "e2e-model" to every JSON decoder (vLLM's included).
            let r = try await BadInput.post(chill, #"{"model":"e2e\u002dmodel","messages":[{"role":"user","content":"hi"}],"max_tokens":2}"#)
            #expect(r.status == 200, "\(r)")
        }
    }

    /// Bodies that route (to the only model) but are not valid requests: vLLM answers, chill relays.
    @Test(.timeLimit(.minutes(1)), arguments: [
        ("malformed after the model", #"{"model":"e2e-model","messages":[{"role":"#, "Invalid JSON body"),
        ("not JSON at all", "hello, world", "Invalid JSON body"),
        ("an empty body", "", "Invalid JSON body"),
        ("no model field", #"{"messages":[{"role":"user","content":"hi"}],"max_tokens":"many"}"#, "max_tokens must be an integer"),
    ])
    func bodiesThatRouteAreTheBackendsToAnswer(kind: String, body: String, vllmSays: String) async throws {
        try await BadInput.withChill { chill in
            let r = try await BadInput.post(chill, body)
            #expect(r.status == 400, "\(kind): \(r)")
            let error = try r.openAIError()
            #expect(error.type == "BadRequestError", "\(kind): \(r)")
            #expect(error.message.contains(vllmSays), "\(kind): \(error.message)")
            try await chill.waitForNothingInFlight()
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aOneGigabyteBodyIs413WithTheLimitAndNothingIsKept() async throws {
        try await BadInput.withChill(extra: ["--max-body-size", "1048576"]) { chill in
            // Content-Length says 1 GiB; the model would come last, so the proxy must buffer to route it.
            // Just past the limit, then stop: bytes sent after the server closed would reset the connection.
            let r = try await Self.sendGigabyteBody(startingWith: #"{"messages":["#, sending: 16, to: chill)
            try BadInput.expectError(r, status: 413, type: "invalid_request_error", code: "request_too_large",
                                     messageContains: "request body exceeds 1048576 bytes (--max-body-size)")
            #expect(r.header("connection") == "close")
            try await chill.waitForNothingInFlight()
            #expect(try await chill.state() == "ScaledDown")
        }
    }

    /// A POST whose Content-Length says 1 GiB: `start`, then `chunks` × 64 KiB of spaces; the response.
    static func sendGigabyteBody(startingWith start: String, sending chunks: Int, to chill: E2EChill) async throws -> E2EHTTP.Response {
        try await E2EHTTP.onThread {
            let connection = try E2EHTTP.Connection.open(port: chill.port, timeout: 20)
            defer { connection.close() }
            try connection.sendRaw(Array("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(1 << 30)\r\n\r\n\(start)".utf8))
            let chunk = [UInt8](repeating: UInt8(ascii: " "), count: 64 * 1024)
            for _ in 0..<chunks { try connection.sendRaw(chunk) }
            return try connection.readResponse()
        }
    }

    /// The same bound while the body streams to a warm model that `model` already picked.
    @Test(.timeLimit(.minutes(1)))
    func aBodyRelayedToAWarmModelIsBoundedToo() async throws {
        try await BadInput.withChill(extra: ["--max-body-size", "1048576"]) { chill in
            let warm = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat())
            #expect(warm.status == 200)
            let r = try await Self.sendGigabyteBody(startingWith: #"{"model":"\#(E2E.model)","messages":["#, sending: 17, to: chill)
            try BadInput.expectError(r, status: 413, type: "invalid_request_error", code: "request_too_large",
                                     messageContains: "request body exceeds 1048576 bytes (--max-body-size)")
            try await chill.waitForNothingInFlight()
            #expect(try await chill.request("POST", "/v1/chat/completions", body: E2E.chat()).status == 200, "the model still serves")
        }
    }

    /// A body that stops arriving (`model` already read, the model warm, the rest never sent) is
    /// 408 after `--body-read-timeout`, the backend's request is cut and nothing stays in flight; a
    /// body that keeps trickling in is not cut, however long it takes in all.
    @Test(.timeLimit(.minutes(1)))
    func aStalledBodyIs408AndATricklingOneIsNot() async throws {
        try await BadInput.withChill(extra: ["--body-read-timeout", "2s"]) { chill in
            let warm = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat())
            #expect(warm.status == 200)
            let chat = Array(E2E.chat().utf8)
            let head = Array("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(chat.count)\r\n\r\n".utf8)
            let stalled = try await E2EHTTP.onThread { () throws -> E2EHTTP.Response in
                let connection = try E2EHTTP.Connection.open(port: chill.port, timeout: 20)
                defer { connection.close() }
                try connection.sendRaw(head + chat.prefix(chat.count - 2))
                return try connection.readResponse()
            }
            try BadInput.expectError(stalled, status: 408, type: "invalid_request_error", code: "request_timeout",
                                     messageContains: "--body-read-timeout")
            #expect(stalled.header("connection") == "close")
            try await chill.waitForNothingInFlight()

            // Four bytes every 250 ms: over 3 s in all, never 2 s without a byte.
            let trickled = try await E2EHTTP.onThread { () throws -> E2EHTTP.Response in
                let connection = try E2EHTTP.Connection.open(port: chill.port, timeout: 30)
                defer { connection.close() }
                try connection.sendRaw(head + chat.prefix(chat.count - 52))
                var sent = chat.count - 52
                while sent < chat.count {
                    usleep(250_000)
                    let next = min(chat.count, sent + 4)
                    try connection.sendRaw(Array(chat[sent..<next]))
                    sent = next
                }
                return try connection.readResponse()
            }
            #expect(trickled.status == 200, "\(trickled)")
            #expect(try trickled.json()["object"] as? String == "chat.completion")
        }
    }
}
