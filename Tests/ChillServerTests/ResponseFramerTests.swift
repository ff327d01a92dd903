import NIOCore
import Testing
@testable import ChillServer

/// The backend-response reader the relay forwards from: every case is run whole, split at every
/// byte, and byte by byte — the events must not depend on how the bytes arrived.
@Suite struct ResponseFramerTests {
    /// What a run of the framer saw.
    struct Framed: Equatable, CustomStringConvertible {
        var statuses: [Int] = []
        var framing: ResponseFraming?
        var keepAlive: Bool?
        var needsRewrite: Bool?
        /// Head bytes and body slices as delivered, in order.
        var relayed: [UInt8] = []
        var body: [UInt8] = []
        var ends = 0
        var endsAtClose = false
        var error: ResponseFramer.FramingError?

        /// The same events; after an error, how much of the bad read's body was passed on may differ.
        func alike(_ other: Framed) -> Bool {
            guard error != nil || other.error != nil else { return self == other }
            return statuses == other.statuses && error == other.error && ends == other.ends && framing == other.framing
        }

        var description: String {
            "statuses \(statuses) framing \(String(describing: framing)) keepAlive \(String(describing: keepAlive)) body \(String(decoding: body, as: UTF8.self).debugDescription) ends \(ends) error \(String(describing: error))"
        }
    }

    static func run(_ pieces: [[UInt8]], toHEAD: Bool = false, decode: Bool = false) -> Framed {
        var framer = ResponseFramer()
        framer.expectResponse(toHEAD: toHEAD)
        var out = Framed()
        do {
            for piece in pieces {
                var buffer = ByteBuffer(bytes: piece)
                while let event = try framer.next(&buffer) {
                    switch event {
                    case .head(let head):
                        out.statuses.append(head.status)
                        out.relayed += head.bytes.readableBytesView
                        if head.status >= 200 {
                            out.framing = head.framing
                            out.keepAlive = head.keepAlive
                            out.needsRewrite = head.needsRewrite
                            framer.decodeChunks = decode
                        }
                    case .body(let body):
                        out.relayed += body.readableBytesView
                        out.body += body.readableBytesView
                    case .end:
                        out.ends += 1
                    }
                }
            }
        } catch {
            out.error = error as? ResponseFramer.FramingError
        }
        out.endsAtClose = framer.endsAtClose
        return out
    }

    /// `input` whole, split once at every byte, and one byte at a time: all alike.
    static func framedEveryWay(_ input: String, toHEAD: Bool = false, decode: Bool = false) -> Framed {
        let bytes = Array(input.utf8)
        let whole = run([bytes], toHEAD: toHEAD, decode: decode)
        for split in 1..<max(bytes.count, 1) {
            let two = run([Array(bytes[..<split]), Array(bytes[split...])], toHEAD: toHEAD, decode: decode)
            #expect(two.alike(whole), "split at \(split) of \(input.debugDescription): \(two) vs \(whole)")
        }
        let single = run(bytes.map { [$0] }, toHEAD: toHEAD, decode: decode)
        #expect(single.alike(whole), "byte by byte: \(input.debugDescription): \(single) vs \(whole)")
        return whole
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let input: String
        var toHEAD = false
        var statuses: [Int] = [200]
        var framing: ResponseFraming?
        var keepAlive = true
        var needsRewrite = false
        /// The body as received (nil: everything after the head).
        var body: String?
        /// The body with chunked framing removed (nil: as `body`).
        var decoded: String?
        var ends = 1
        var error: ResponseFramer.FramingError?
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "content-length", input: "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: 5\r\n\r\nhello",
             framing: .length(5), body: "hello"),
        Case(name: "empty content-length", input: "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", framing: .length(0), body: ""),
        Case(name: "no reason phrase", input: "HTTP/1.1 404\r\nContent-Length: 2\r\n\r\nno", statuses: [404], framing: .length(2), body: "no"),
        Case(name: "chunked, extensions and trailers",
             input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n6 ; x\r\n world\r\nA\r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\n",
             framing: .chunked, decoded: "hello world0123456789"),
        Case(name: "SSE chunks", input: "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
             + "f\r\ndata: {\"a\":1}\n\n\r\ne\r\ndata: [DONE]\n\n\r\n0\r\n\r\n", framing: .chunked, decoded: "data: {\"a\":1}\n\ndata: [DONE]\n\n"),
        Case(name: "chunked after gzip", input: "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
             framing: .chunked, decoded: "z"),
        Case(name: "content-length beside chunked: chunked wins, the length goes",
             input: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
             framing: .chunked, needsRewrite: true, decoded: "z"),
        Case(name: "ends at the close", input: "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nabc", framing: .untilClose,
             keepAlive: false, body: "abc", ends: 0),
        Case(name: "not chunked last: ends at the close", input: "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\nabc",
             framing: .untilClose, keepAlive: false, needsRewrite: true, body: "abc", ends: 0),
        Case(name: "HEAD has no body", input: "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n", toHEAD: true, framing: noBody, body: ""),
        Case(name: "204", input: "HTTP/1.1 204 No Content\r\n\r\n", statuses: [204], framing: noBody, body: ""),
        Case(name: "304 with a length", input: "HTTP/1.1 304 Not Modified\r\ncontent-length: 10\r\n\r\n", statuses: [304], framing: noBody, body: ""),
        Case(name: "100 Continue, then the answer", input: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 1\r\n\r\nk",
             statuses: [100, 201], framing: .length(1), body: "k"),
        Case(name: "connection: close", input: "HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 1\r\n\r\nx",
             framing: .length(1), keepAlive: false, needsRewrite: true, body: "x"),
        Case(name: "HTTP/1.0 keep-alive", input: "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=5\r\ncontent-length: 1\r\n\r\nx",
             framing: .length(1), needsRewrite: true, body: "x"),
        Case(name: "HTTP/1.0 closes", input: "HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\nx", framing: .length(1), keepAlive: false, body: "x"),
        Case(name: "a header named by Connection", input: "HTTP/1.1 200 OK\r\nConnection: x-hop\r\nX-Hop: 1\r\ncontent-length: 0\r\n\r\n",
             framing: .length(0), needsRewrite: true, body: ""),
        Case(name: "same content-length twice", input: "HTTP/1.1 200 OK\r\ncontent-length: 1\r\nContent-Length: 1\r\n\r\nx",
             statuses: [], ends: 0, error: .malformedHead("more than one Content-Length")),

        Case(name: "HTTP/2 status line", input: "HTTP/2 200 OK\r\n\r\n", statuses: [], ends: 0, error: .malformedHead("not an HTTP/1.x status line")),
        Case(name: "two-digit status", input: "HTTP/1.1 20 OK\r\n\r\n", statuses: [], ends: 0, error: .malformedHead("status code is not 3 digits")),
        Case(name: "obsolete line folding", input: "HTTP/1.1 200 OK\r\nA: b\r\n c\r\ncontent-length: 0\r\n\r\n", statuses: [], ends: 0,
             error: .malformedHead("obsolete line folding")),
        Case(name: "space before the colon", input: "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", statuses: [], ends: 0,
             error: .malformedHead("invalid header name")),
        Case(name: "bare LF inside the head", input: "HTTP/1.1 200 OK\r\nA: b\nB: c\r\n\r\n", statuses: [], ends: 0,
             error: .malformedHead("control character in a header value")),
        Case(name: "conflicting content-length", input: "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nxx",
             statuses: [], ends: 0, error: .malformedHead("more than one Content-Length")),
        Case(name: "signed content-length", input: "HTTP/1.1 200 OK\r\ncontent-length: +1\r\n\r\nx", statuses: [], ends: 0,
             error: .malformedHead("invalid Content-Length")),
        Case(name: "101 never asked for", input: "HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n", statuses: [], ends: 0,
             error: .malformedHead("101 Switching Protocols, which chill never asks for")),
        Case(name: "a chunk size that is not hex", input: "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", framing: .chunked,
             ends: 0, error: .malformedChunk),
        Case(name: "chunk data longer than its size", input: "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n",
             framing: .chunked, ends: 0, error: .malformedChunk),
        Case(name: "a chunk size over 15 hex digits", input: "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1000000000000000\r\n",
             framing: .chunked, ends: 0, error: .malformedChunk),
        Case(name: "bytes after the response", input: "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n\r\n",
             framing: .length(1), body: "x", error: .unsolicited),
    ]

    // A `.none` literal in the table would read as Optional.none.
    static let noBody = ResponseFraming.none

    @Test(arguments: cases)
    func framesTheBodyAlikeHoweverTheBytesArrive(_ c: Case) {
        for decode in [false, true] {
            let got = Self.framedEveryWay(c.input, toHEAD: c.toHEAD, decode: decode)
            #expect(got.statuses == c.statuses, "\(c.name): \(got)")
            #expect(got.error == c.error, "\(c.name): \(got)")
            #expect(got.ends == c.ends, "\(c.name): \(got)")
            if c.framing != nil { #expect(got.framing == c.framing, "\(c.name): \(got)") }
            guard c.error == nil else { continue }
            #expect(got.keepAlive == c.keepAlive, "\(c.name): \(got)")
            #expect(got.needsRewrite == c.needsRewrite, "\(c.name): \(got)")
            let expected = decode ? (c.decoded ?? c.body) : c.body
            if let expected { #expect(got.body == Array(expected.utf8), "\(c.name) decode \(decode): \(got)") }
            // As received, the relay forwards exactly the bytes that came.
            if !decode { #expect(got.relayed == Array(c.input.utf8), "\(c.name): \(got)") }
        }
    }

    @Test func aBodyEndedByTheCloseIsCompleteOnlyAtTheClose() {
        let got = Self.run([Array("HTTP/1.1 200 OK\r\n\r\nabc".utf8)])
        #expect(got.endsAtClose && got.ends == 0)
        var framer = ResponseFramer()
        framer.expectResponse(toHEAD: false)
        #expect(framer.inResponse, "waiting for a head: a close now cuts the response")
        var buffer = ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\na")
        while (try? framer.next(&buffer)) ?? nil != nil {}
        #expect(framer.inResponse, "two bytes of the body are missing")
    }

    @Test func aHeadOverTheLimitIsRefusedWithoutWaitingForItsEnd() {
        var framer = ResponseFramer()
        framer.expectResponse(toHEAD: false)
        var buffer = ByteBuffer(string: "HTTP/1.1 200 OK\r\n" + String(repeating: "x-big: \(String(repeating: "a", count: 1000))\r\n", count: 70))
        #expect(throws: ResponseFramer.FramingError.headTooLarge(limit: ResponseFramer.maxHeadBytes)) { _ = try framer.next(&buffer) }
    }

    @Test func bytesNobodyAskedForAreAnError() {
        var framer = ResponseFramer()
        var buffer = ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\n")
        #expect(throws: ResponseFramer.FramingError.unsolicited) { _ = try framer.next(&buffer) }
    }

    // MARK: - The head the client sees

    static func rewrite(_ input: String, keepAlive: Bool = true, http10: Bool = false, relaysChunks: Bool = true) throws -> String {
        let head = try ResponseHeadParser.parse(ByteBuffer(string: input), toHEAD: false)
        let out = head.rewritten(keepAlive: keepAlive, http10: http10, relaysChunks: relaysChunks, allocator: ByteBufferAllocator())
        return String(buffer: out)
    }

    @Test func theRewrittenHeadDropsHopByHopHeadersAndSaysWhatChillDoes() throws {
        #expect(try Self.rewrite("HTTP/1.1 200 OK\r\nConnection: keep-alive, x-hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nServer: vllm\r\ncontent-length: 2\r\n\r\n")
                == "HTTP/1.1 200 OK\r\nServer: vllm\r\ncontent-length: 2\r\n\r\n")
        #expect(try Self.rewrite("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n", keepAlive: false)
                == "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n")
        #expect(try Self.rewrite("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\ncontent-length: 2\r\n\r\n")
                == "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n", "an HTTP/1.1 client gets an HTTP/1.1 head")
        #expect(try Self.rewrite("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n", http10: true)
                == "HTTP/1.0 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\n")
        // Chunks for an HTTP/1.0 client are decoded, the body ends with the close: no framing header is left.
        #expect(try Self.rewrite("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nContent-Length: 9\r\nx: y\r\n\r\n", keepAlive: false, http10: true, relaysChunks: false)
                == "HTTP/1.0 200 OK\r\nx: y\r\nconnection: close\r\n\r\n")
        // Chunks relayed as received keep their header; a length beside them goes.
        #expect(try Self.rewrite("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nContent-Length: 9\r\n\r\n")
                == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        #expect(try Self.rewrite("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nTrailer: x\r\nTE: trailers\r\nUpgrade: h2c\r\nProxy-Connection: x\r\ncontent-length: 0\r\n\r\n")
                == "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\ncontent-length: 0\r\n\r\n")
    }
}
