import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import ChillServer

/// The backend-response reader under mutated responses: it never crashes, its events do not depend
/// on how the bytes are split, what it relays as received is exactly what came, and what both it and
/// NIO's HTTP/1 decoder (llhttp) accept they read the same way: final status, body and end (NIO skips 1xx heads).
@Suite struct ResponseFramerFuzzTests {
    static let corpus = [
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"id\":\"x\"}\n",
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\nf\r\ndata: {\"a\":1}\n\n\r\ne\r\ndata: [DONE]\n\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nx-trailer: y\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nConnection: close\r\n\r\nno\n",
        "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 204 No Content\r\nserver: uvicorn\r\n\r\n",
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 2\r\n\r\n{}",
    ]
    static let tokens = ["\r\n", "\r\n\r\n", ": ", "content-length: ", "transfer-encoding: chunked\r\n", "0\r\n\r\n", "connection: close\r\n",
                         "HTTP/1.1 ", "200", " ", "\t", ";", ",", "\n", "ff", "0", "chunked", "keep-alive"]

    /// What NIO's client decoder makes of `bytes` as the answer to a GET (nil: it rejects them).
    static func niosReading(_ bytes: [UInt8]) -> (statuses: [Int], body: [UInt8], ended: Bool)? {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        do {
            try channel.pipeline.syncOperations.addHTTPClientHandlers()
            try channel.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")))
            try channel.writeOutbound(HTTPClientRequestPart.end(nil))
            try channel.writeInbound(ByteBuffer(bytes: bytes))
            var statuses: [Int] = [], body: [UInt8] = [], ended = false
            while let part = try channel.readInbound(as: HTTPClientResponsePart.self) {
                switch part {
                case .head(let head): statuses.append(Int(head.status.code))
                case .body(let buffer): body += buffer.readableBytesView
                case .end: ended = true
                }
            }
            return (statuses, body, ended)
        } catch {
            return nil
        }
    }

    @Test func mutatedResponsesAreFramedAlikeEveryWayAndAsNIOReadsThem() {
        var rng = SplitMix64(seed: Fuzz.seed ^ 0x4F2A)
        let accepted = Fuzz.run("response framer", corpus: Self.corpus, tokens: Self.tokens) { bytes in
            let whole = ResponseFramerTests.run([bytes])
            var pieces: [[UInt8]] = []
            var start = 0
            for split in ModelFieldScannerFuzzTests.randomSplits(bytes.count, &rng).sorted() where split > start {
                pieces.append(Array(bytes[start..<split]))
                start = split
            }
            pieces.append(Array(bytes[start...]))
            let split = ResponseFramerTests.run(pieces)
            guard split.alike(whole) else { return .failed("split \(pieces.map(\.count)) gives \(split), whole \(whole)") }
            guard whole.error == nil, whole.ends == 1 else { return .rejected }
            guard whole.relayed == bytes else { return .failed("relayed bytes differ from the input") }
            let decoded = ResponseFramerTests.run([bytes], decode: true)
            // llhttp refuses some things RFC 9112 allows (whitespace around `=` in a chunk extension, for
            // one): only a different reading of the same bytes would be a bug.
            guard let nio = Self.niosReading(bytes) else { return .accepted }
            guard nio.statuses == whole.statuses.filter({ $0 >= 200 }), nio.body == decoded.body, nio.ended else {
                return .failed("NIO reads statuses \(nio.statuses), body \(Fuzz.literal(nio.body)), ended \(nio.ended); the framer \(decoded)")
            }
            return .accepted
        }
        #expect(accepted > Self.corpus.count, "mutants are accepted too, not only the corpus")
    }
}
