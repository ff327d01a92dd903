import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import ChillServer

/// What `UpstreamHandler` puts on the wire for a request.
@Suite struct UpstreamHandlerTests {
    static func written(_ head: HTTPRequestHead, chunked: Bool, parts: [String], ended: Bool, later: [String] = []) throws -> String {
        let channel = EmbeddedChannel()
        let handler = UpstreamHandler()
        try channel.pipeline.syncOperations.addHandler(handler)
        handler.sendRequest(head, chunked: chunked, parts: parts.map { .byteBuffer(ByteBuffer(string: $0)) }, ended: ended)
        for part in later { handler.sendBody(ByteBuffer(string: part)) }
        if !ended { handler.sendEnd() }
        handler.flush()
        var out = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { out += String(buffer: buffer) }
        _ = try channel.finish()
        return out
    }

    @Test func aChunkedBodyIsFramedAndAnEmptyPartNeverReadsAsItsEnd() throws {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/v1/chat/completions")
        head.headers.add(name: "transfer-encoding", value: "chunked")
        let prefix = "POST /v1/chat/completions HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"
        #expect(try Self.written(head, chunked: true, parts: ["", "ab"], ended: true) == prefix + "2\r\nab\r\n0\r\n\r\n")
        #expect(try Self.written(head, chunked: true, parts: ["ab"], ended: false, later: ["", "c"]) == prefix + "2\r\nab\r\n1\r\nc\r\n0\r\n\r\n")
    }

    @Test func aBodyWithALengthGoesAsItCame() throws {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/v1/completions")
        head.headers.add(name: "content-length", value: "3")
        #expect(try Self.written(head, chunked: false, parts: ["a", ""], ended: false, later: ["bc"])
                == "POST /v1/completions HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc")
    }
}
