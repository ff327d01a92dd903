import Foundation
import Testing
@testable import ChillServer

/// The relay has no HTTP codec of its own: request bodies that came chunked go upstream re-chunked,
/// and chill's own answers are serialized by hand (a response to HEAD without its body).
@Suite(.serialized) struct RawRelayTests {
    /// `body` in chunked framing, cut into `pieces` chunks (one with an extension), ended.
    static func chunked(_ body: String, pieces: Int) -> String {
        let bytes = Array(body.utf8)
        let size = (bytes.count + pieces - 1) / pieces
        var out = ""
        for (i, start) in stride(from: 0, to: bytes.count, by: size).enumerated() {
            let chunk = String(decoding: bytes[start..<min(bytes.count, start + size)], as: UTF8.self)
            out += String(chunk.utf8.count, radix: 16) + (i == 0 ? ";note=first" : "") + "\r\n" + chunk + "\r\n"
        }
        return out + "0\r\n\r\n"
    }

    @Test(.timeLimit(.minutes(1)))
    func chunkedRequestBodiesReachTheBackendWholeOnAKeptAliveConnection() async throws {
        try await BadInput.withChill { chill in
            let head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            // Cold (held while the model wakes, then replayed), then warm (relayed as it comes), on one connection.
            let burst = head + Self.chunked(E2E.chat(), pieces: 5) + head + Self.chunked(E2E.chat(stream: true, maxTokens: 3), pieces: 3)
            let answers = try await ProxyHTTPBadInputTests.pipelined(burst, answers: 2, to: chill)
            #expect(answers.map(\.status) == [200, 200], "\(answers)")
            #expect(answers[0].text.contains("\"chat.completion\""), "\(answers[0].text)")
            #expect(answers[1].isChunked && answers[1].text.contains("data: [DONE]"), "\(answers[1])")
            try await chill.waitForNothingInFlight()
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aHEADRequestGetsTheLengthWithoutTheBody() async throws {
        try await BadInput.withChill { chill in
            let (head, next) = try await E2EHTTP.onThread {
                let connection = try E2EHTTP.Connection.open(port: chill.port, timeout: 20)
                defer { connection.close() }
                try connection.sendRaw(ProxyHTTPBadInputTests.bytes("HEAD /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
                return (try connection.readResponse(method: "HEAD"), try connection.readResponse(method: "GET"))
            }
            #expect(head.status == 200 && head.body.isEmpty, "\(head)")
            #expect(head.header("content-length") == next.header("content-length"), "\(head) vs \(next)")
            #expect(next.status == 200 && !next.body.isEmpty, "the connection is still in step: \(next)")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func anHTTP10ClientThatExpects100ContinueGetsOnlyTheAnswer() async throws {
        try await BadInput.withChill { chill in
            let chat = E2E.chat()
            let r = try await BadInput.raw(chill, ProxyHTTPBadInputTests.bytes(
                "POST /v1/chat/completions HTTP/1.0\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: \(chat.utf8.count)\r\n\r\n\(chat)"))
            #expect(r.status == 200, "no interim 100 for HTTP/1.0: \(r)")
            #expect(r.text.contains("\"chat.completion\""), "\(r.text)")
        }
    }
}
