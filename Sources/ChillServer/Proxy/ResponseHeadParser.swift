import NIOCore

/// Parses a backend response head (status line through the blank line, RFC 9112 §4–§6) into what
/// the relay acts on: status, keep-alive, body framing and whether any header must go before the
/// client sees it. Rejects what could be read two ways: obsolete line folding, bare LF, control
/// characters, whitespace before a colon, more than one Content-Length.
enum ResponseHeadParser {
    typealias FramingError = ResponseFramer.FramingError

    static func parse(_ bytes: ByteBuffer, toHEAD: Bool) throws -> UpstreamResponseHead {
        let fields = try bytes.withUnsafeReadableBytes { raw in try parseFields(raw) }
        let status = fields.status
        var head = UpstreamResponseHead(status: status, minorVersion: fields.minor, keepAlive: true, framing: .none, bytes: bytes)
        head.keepAlive = fields.minor >= 1 ? !fields.close : (fields.keepAlive && !fields.close)
        head.connectionNamed = fields.connectionNamed
        head.needsRewrite = fields.hopByHop || (fields.chunked != nil && fields.contentLength != nil)
        if toHEAD || status < 200 || status == 204 || status == 304 {
            head.framing = .none
        } else if let chunked = fields.chunked {
            head.framing = chunked ? .chunked : .untilClose
            if !chunked { head.needsRewrite = true }
        } else if let length = fields.contentLength {
            head.framing = .length(length)
        } else {
            head.framing = .untilClose
        }
        if head.framing == .untilClose { head.keepAlive = false }
        if status == 101 { throw FramingError.malformedHead("101 Switching Protocols, which chill never asks for") }
        return head
    }

    private struct Fields {
        var minor = 1
        var status = 0
        var close = false
        var keepAlive = false
        var hopByHop = false
        var contentLength: Int?
        /// Transfer-Encoding: whether its last coding is chunked (nil: no such header).
        var chunked: Bool?
        var connectionNamed: [String] = []
    }

    private static func parseFields(_ raw: UnsafeRawBufferPointer) throws -> Fields {
        var fields = Fields()
        // "HTTP/1.x NNN[ reason]\r\n"
        guard raw.count >= 14, matches(raw, 0, "HTTP/1."), raw[7] == 0x30 || raw[7] == 0x31, raw[8] == 0x20,
              let statusEnd = HeadScanner.lineEnd(raw, from: 0) else {
            throw FramingError.malformedHead("not an HTTP/1.x status line")
        }
        fields.minor = Int(raw[7] - 0x30)
        var status = 0
        for i in 9..<12 {
            guard raw[i] >= 0x30, raw[i] <= 0x39 else { throw FramingError.malformedHead("status code is not 3 digits") }
            status = status * 10 + Int(raw[i] - 0x30)
        }
        guard status >= 100, statusEnd == 12 || raw[12] == 0x20 else { throw FramingError.malformedHead("bad status code") }
        for i in 12..<statusEnd where !HeadScanner.isFieldByte(raw[i]) { throw FramingError.malformedHead("control character in the reason phrase") }
        fields.status = status

        var lineStart = statusEnd + 2
        while true {
            guard let end = HeadScanner.lineEnd(raw, from: lineStart) else { throw FramingError.malformedHead("unterminated header line") }
            if end == lineStart { break }
            try parseHeader(raw, lineStart..<end, into: &fields)
            lineStart = end + 2
        }
        return fields
    }

    private static func parseHeader(_ raw: UnsafeRawBufferPointer, _ line: Range<Int>, into fields: inout Fields) throws {
        var colon = line.lowerBound
        while colon < line.upperBound, raw[colon] != 0x3A {
            guard HeadScanner.isTokenByte(raw[colon]) else {
                throw FramingError.malformedHead(colon == line.lowerBound ? "obsolete line folding" : "invalid header name")
            }
            colon += 1
        }
        guard colon < line.upperBound, colon > line.lowerBound else { throw FramingError.malformedHead("header line without a name and colon") }
        for i in (colon + 1)..<line.upperBound where !HeadScanner.isFieldByte(raw[i]) {
            throw FramingError.malformedHead("control character in a header value")
        }
        let value = HeadScanner.trimmed(raw, (colon + 1)..<line.upperBound)

        switch HeadScanner.Header(raw, line.lowerBound..<colon) {
        case .contentLength:
            let length = try parseLength(raw, value)
            // Even an equal repeat is refused, as nginx and llhttp do: one of them may be a smuggled one.
            if fields.contentLength != nil { throw FramingError.malformedHead("more than one Content-Length") }
            fields.contentLength = length
        case .transferEncoding:
            fields.chunked = lastToken(raw, value).map { HeadScanner.equalsLowercased(raw, $0, "chunked") } ?? false
        case .connection:
            fields.hopByHop = true
            forEachToken(raw, value) { token in
                if HeadScanner.equalsLowercased(raw, token, "close") { fields.close = true }
                else if HeadScanner.equalsLowercased(raw, token, "keep-alive") { fields.keepAlive = true }
                else { fields.connectionNamed.append(String(decoding: UnsafeRawBufferPointer(rebasing: raw[token]), as: UTF8.self).lowercased()) }
            }
        case .hopByHop:
            fields.hopByHop = true
        case .other:
            break
        }
    }

    private static func parseLength(_ raw: UnsafeRawBufferPointer, _ value: Range<Int>) throws -> Int {
        guard !value.isEmpty, value.count <= 18 else { throw FramingError.malformedHead("invalid Content-Length") }
        var length = 0
        for i in value {
            guard raw[i] >= 0x30, raw[i] <= 0x39 else { throw FramingError.malformedHead("invalid Content-Length") }
            length = length * 10 + Int(raw[i] - 0x30)
        }
        return length
    }

    private static func forEachToken(_ raw: UnsafeRawBufferPointer, _ value: Range<Int>, _ body: (Range<Int>) -> Void) {
        var start = value.lowerBound
        while start < value.upperBound {
            var end = start
            while end < value.upperBound, raw[end] != 0x2C { end += 1 }
            let token = HeadScanner.trimmed(raw, start..<end)
            if !token.isEmpty { body(token) }
            start = end + 1
        }
    }

    private static func lastToken(_ raw: UnsafeRawBufferPointer, _ value: Range<Int>) -> Range<Int>? {
        var last: Range<Int>?
        forEachToken(raw, value) { last = $0 }
        return last
    }

    private static func matches(_ raw: UnsafeRawBufferPointer, _ at: Int, _ literal: String) -> Bool {
        var i = at
        for byte in literal.utf8 {
            guard i < raw.count, raw[i] == byte else { return false }
            i += 1
        }
        return true
    }
}
