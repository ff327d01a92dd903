import NIOCore

/// How a response's body ends (RFC 9112 §6.3).
enum ResponseFraming: Equatable {
    /// No body: a response to HEAD, 1xx, 204, 304.
    case none
    case length(Int)
    case chunked
    /// The body is everything until the backend closes.
    case untilClose
}

/// A backend response head, parsed in place from the bytes it came in: the relay forwards those
/// bytes as they are unless a header must go (hop-by-hop ones), so no header becomes a `String`.
struct UpstreamResponseHead {
    var status: Int
    /// HTTP/1.`minorVersion`.
    var minorVersion: Int
    /// Whether the backend keeps the connection open after this response.
    var keepAlive: Bool
    var framing: ResponseFraming
    /// The status line through the blank line, as received.
    var bytes: ByteBuffer
    /// A header the client must not see as sent: a hop-by-hop one (RFC 9110 §7.6.1), a name listed
    /// in `Connection`, or Content-Length beside Transfer-Encoding.
    var needsRewrite = false
    /// Header names listed in `Connection`, lowercased (rare; they are dropped too).
    var connectionNamed: [String] = []

    /// The head as the client sees it: hop-by-hop headers gone, `Connection` saying what chill does
    /// with the client's connection. Transfer-Encoding stays when the chunked body is relayed as
    /// received; an HTTP/1.0 client gets an HTTP/1.0 head (and a decoded body, ended by the close).
    func rewritten(keepAlive: Bool, http10: Bool, relaysChunks: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
        var out = allocator.buffer(capacity: bytes.readableBytes + 32)
        out.writeStaticString(http10 ? "HTTP/1.0" : "HTTP/1.1")
        bytes.withUnsafeReadableBytes { raw in
            let lineEnd = HeadScanner.lineEnd(raw, from: 0) ?? raw.count
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[8..<min(lineEnd + 2, raw.count)]))  // " 200 OK\r\n"
            HeadScanner.forEachHeader(raw, from: min(lineEnd + 2, raw.count)) { name, line in
                if keeps(name, in: raw, relaysChunks: relaysChunks) { out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[line])) }
            }
        }
        if !keepAlive { out.writeStaticString("connection: close\r\n") }
        else if http10 { out.writeStaticString("connection: keep-alive\r\n") }
        out.writeStaticString("\r\n")
        return out
    }

    private func keeps(_ name: Range<Int>, in raw: UnsafeRawBufferPointer, relaysChunks: Bool) -> Bool {
        let header = HeadScanner.Header(raw, name)
        if header == .transferEncoding { return relaysChunks && framing == .chunked }
        if header == .contentLength { return framing != .chunked && framing != .untilClose }
        if header.isHopByHop { return false }
        guard !connectionNamed.isEmpty else { return true }
        return !connectionNamed.contains { HeadScanner.equalsLowercased(raw, name, $0) }
    }
}

/// Byte-level helpers for an HTTP/1.1 head held in memory (validated by `ResponseHeadParser`).
enum HeadScanner {
    /// The headers chill looks at in a response.
    enum Header: Equatable {
        case contentLength, transferEncoding, connection, other
        /// One of RFC 9110 §7.6.1's connection-specific fields (other than Transfer-Encoding).
        case hopByHop

        init(_ raw: UnsafeRawBufferPointer, _ name: Range<Int>) {
            self = .other
            switch name.count {
            case 14 where equalsLowercased(raw, name, "content-length"): self = .contentLength
            case 17 where equalsLowercased(raw, name, "transfer-encoding"): self = .transferEncoding
            case 10 where equalsLowercased(raw, name, "connection"): self = .connection
            default:
                for candidate in Self.hopByHopNames where candidate.utf8.count == name.count {
                    if equalsLowercased(raw, name, candidate) { self = .hopByHop; return }
                }
            }
        }

        var isHopByHop: Bool { self == .hopByHop || self == .connection }

        /// HeaderRewriting's list, less the two classified on their own.
        private static let hopByHopNames = Array(HeaderRewriting.hopByHop.subtracting(["connection", "transfer-encoding"]))
    }

    /// RFC 9110 §5.6.2 tchar.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: true
        default: false
        }
    }

    /// Visible ASCII, space, tab and obs-text (RFC 9110 §5.5); no other control characters.
    static func isFieldByte(_ byte: UInt8) -> Bool {
        byte == 0x09 || (byte >= 0x20 && byte != 0x7F)
    }

    /// Optional whitespace (RFC 9110 §5.6.3): space or tab.
    static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09
    }

    /// `range` without leading and trailing spaces and tabs.
    static func trimmed(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>) -> Range<Int> {
        var start = range.lowerBound, end = range.upperBound
        while start < end, isSpace(raw[start]) { start += 1 }
        while end > start, isSpace(raw[end - 1]) { end -= 1 }
        return start..<end
    }

    static func equalsLowercased(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercase: String) -> Bool {
        guard range.count == lowercase.utf8.count else { return false }
        var i = range.lowerBound
        for expected in lowercase.utf8 {
            let byte = raw[i]
            guard byte == expected || (byte >= 0x41 && byte <= 0x5A && byte | 0x20 == expected) else { return false }
            i += 1
        }
        return true
    }

    /// The index of the `\r` that ends the line starting at `start` (nil: none before the end).
    static func lineEnd(_ raw: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var i = start
        while i + 1 < raw.count {
            if raw[i] == 0x0D && raw[i + 1] == 0x0A { return i }
            i += 1
        }
        return nil
    }

    /// Calls `body` with each header's name range and whole line (CRLF included), from `start` to
    /// the blank line.
    static func forEachHeader(_ raw: UnsafeRawBufferPointer, from start: Int, _ body: (_ name: Range<Int>, _ line: Range<Int>) -> Void) {
        var lineStart = start
        while let end = lineEnd(raw, from: lineStart), end > lineStart {
            var colon = lineStart
            while colon < end && raw[colon] != 0x3A { colon += 1 }
            body(lineStart..<colon, lineStart..<(end + 2))
            lineStart = end + 2
        }
    }
}
