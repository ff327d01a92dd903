import NIOCore

/// Reads backend responses off the wire without NIOHTTP1: it finds each head, parses only what the
/// relay acts on, and tracks where the body ends (Content-Length, chunked, or the close), handing
/// the body on in the slices it arrived in. Chunked bodies go on as received (framing included)
/// unless `decodeChunks` — for an HTTP/1.0 client, which cannot be sent chunks.
///
/// Strict where a lenient reading could desynchronise a pooled connection: a malformed head, a bad
/// chunk line or bytes nobody asked for are errors, and the connection is not reused.
struct ResponseFramer {
    enum Event {
        case head(UpstreamResponseHead)
        case body(ByteBuffer)
        case end
    }

    enum FramingError: Error, CustomStringConvertible, Equatable {
        case headTooLarge(limit: Int)
        case malformedHead(String)
        case malformedChunk
        case unsolicited
        case truncated

        var description: String {
            switch self {
            case .headTooLarge(let limit): "the backend's response head is over \(limit) bytes"
            case .malformedHead(let why): "the backend sent a malformed response head: \(why)"
            case .malformedChunk: "the backend sent a malformed chunked body"
            case .unsolicited: "the backend sent bytes while no request was outstanding"
            case .truncated: "the backend closed the connection mid-response"
            }
        }
    }

    static let maxHeadBytes = 64 * 1024

    /// Pass the body's payload only (chunk framing and trailers removed).
    var decodeChunks = false
    private var state = State.idle
    /// Bytes of a head that spans reads.
    private var partialHead: ByteBuffer?
    private var toHEAD = false

    private enum State {
        case idle
        case head
        case length(remaining: Int)
        case chunked(ChunkScanner)
        case untilClose
        case endPending
    }

    /// A request was sent: its response comes next.
    mutating func expectResponse(toHEAD: Bool) {
        state = .head
        partialHead = nil
        decodeChunks = false
        self.toHEAD = toHEAD
    }

    /// Whether a response is being read (its head or body), so a close now cuts it.
    var inResponse: Bool {
        switch state {
        case .idle: false
        case .untilClose: false  // the close is its end
        default: true
        }
    }

    /// The response's body ends with the close (it then is complete).
    var endsAtClose: Bool {
        if case .untilClose = state { return true }
        return false
    }

    /// The next event from `buffer`, consuming what it covers; nil when `buffer` holds no more
    /// (a partial head or chunk line is kept for the next read).
    mutating func next(_ buffer: inout ByteBuffer) throws -> Event? {
        switch state {
        case .idle:
            if buffer.readableBytes > 0 { throw FramingError.unsolicited }
            return nil
        case .endPending:
            state = .idle
            return .end
        case .head:
            return try nextHead(&buffer)
        case .length(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let count = min(remaining, buffer.readableBytes)
            state = count == remaining ? .endPending : .length(remaining: remaining - count)
            return .body(buffer.readSlice(length: count)!)
        case .untilClose:
            guard buffer.readableBytes > 0 else { return nil }
            return .body(buffer.readSlice(length: buffer.readableBytes)!)
        case .chunked(var scanner):
            guard buffer.readableBytes > 0 else { return nil }
            let event = try decodeChunks ? scanner.decoded(&buffer) : scanner.asReceived(&buffer)
            state = scanner.isDone ? (decodeChunks ? .idle : .endPending) : .chunked(scanner)
            return event
        }
    }

    private mutating func nextHead(_ buffer: inout ByteBuffer) throws -> Event? {
        if var carried = partialHead {
            carried.writeBuffer(&buffer)
            buffer = carried
            partialHead = nil
        }
        guard let length = Self.headLength(buffer) else {
            if buffer.readableBytes > Self.maxHeadBytes { throw FramingError.headTooLarge(limit: Self.maxHeadBytes) }
            if buffer.readableBytes > 0 { partialHead = buffer.readSlice(length: buffer.readableBytes) }
            return nil
        }
        guard length <= Self.maxHeadBytes else { throw FramingError.headTooLarge(limit: Self.maxHeadBytes) }
        let head = try ResponseHeadParser.parse(buffer.readSlice(length: length)!, toHEAD: toHEAD)
        switch head.framing {
        case _ where head.status < 200: state = .head  // informational: the real head follows
        case .none, .length(0): state = .endPending
        case .length(let count): state = .length(remaining: count)
        case .chunked: state = .chunked(ChunkScanner())
        case .untilClose: state = .untilClose
        }
        return .head(head)
    }

    /// The length of the head at the front of `buffer` (through `\r\n\r\n`), nil when incomplete.
    private static func headLength(_ buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { raw in
            var i = 3
            while i < raw.count {
                if raw[i] == 0x0A, raw[i - 1] == 0x0D, raw[i - 2] == 0x0A, raw[i - 3] == 0x0D { return i + 1 }
                i += 1
            }
            return nil
        }
    }
}

/// Walks a chunked body (RFC 9112 §7.1) byte by byte through its framing and by count through its
/// data, so it never needs a chunk line whole in one read.
struct ChunkScanner {
    private enum Phase { case size, ext, sizeLF, data, dataCR, dataLF, trailerStart, trailerName, trailerValue, trailerLF, finalLF, done }
    private var phase = Phase.size
    /// The chunk size being read, then what is left of its data.
    private var size = 0
    private var digits = 0
    private var lineBytes = 0
    private var ext = ExtensionSyntax.start

    static let maxLineBytes = 4096
    static let maxTrailerBytes = 16 * 1024

    var isDone: Bool { phase == .done }

    /// As received: one slice covering everything up to the buffer's end or the body's.
    mutating func asReceived(_ buffer: inout ByteBuffer) throws -> ResponseFramer.Event {
        let count = try buffer.withUnsafeReadableBytes { raw in
            var i = 0
            while i < raw.count, phase != .done {
                if phase == .data { i += takeData(raw.count - i) } else { i = try scanFraming(raw, from: i) }
            }
            return i
        }
        return .body(buffer.readSlice(length: count)!)
    }

    /// Decoded: the next run of payload bytes, or `.end` once the last chunk and trailers are read.
    mutating func decoded(_ buffer: inout ByteBuffer) throws -> ResponseFramer.Event? {
        while buffer.readableBytes > 0 {
            if phase == .data {
                let count = takeData(buffer.readableBytes)
                return .body(buffer.readSlice(length: count)!)
            }
            let consumed = try buffer.withUnsafeReadableBytes { raw in try scanFraming(raw, from: 0) }
            buffer.moveReaderIndex(forwardBy: consumed)
            if phase == .done { return .end }
        }
        return nil
    }

    private mutating func takeData(_ available: Int) -> Int {
        let count = min(size, available)
        size -= count
        if size == 0 { phase = .dataCR }
        return count
    }

    /// Consumes framing bytes from `start`; stops at the end, at the start of data, or when done.
    private mutating func scanFraming(_ raw: UnsafeRawBufferPointer, from start: Int) throws -> Int {
        var i = start
        while i < raw.count {
            let byte = raw[i]
            i += 1
            switch phase {
            case .size:
                if let value = Self.hexValue(byte) {
                    guard digits < 15 else { throw ResponseFramer.FramingError.malformedChunk }
                    size = size << 4 | value
                    digits += 1
                } else if digits > 0, byte == 0x3B || HeadScanner.isSpace(byte) {  // ; or whitespace before it
                    phase = .ext
                    ext = byte == 0x3B ? .start : .afterValue
                    lineBytes = 0
                } else if digits > 0, byte == 0x0D {
                    phase = .sizeLF
                } else {
                    throw ResponseFramer.FramingError.malformedChunk
                }
            case .ext:
                if byte == 0x0D, ext.mayEnd { phase = .sizeLF; continue }
                lineBytes += 1
                guard lineBytes <= Self.maxLineBytes, let next = ext.next(byte) else { throw ResponseFramer.FramingError.malformedChunk }
                ext = next
            case .sizeLF:
                guard byte == 0x0A else { throw ResponseFramer.FramingError.malformedChunk }
                digits = 0
                lineBytes = 0
                if size == 0 { phase = .trailerStart } else { phase = .data; return i }
            case .data:
                return i - 1
            case .dataCR:
                guard byte == 0x0D else { throw ResponseFramer.FramingError.malformedChunk }
                phase = .dataLF
            case .dataLF:
                guard byte == 0x0A else { throw ResponseFramer.FramingError.malformedChunk }
                phase = .size
            case .trailerStart:
                // Trailer fields are header fields (the client parses them): a name, a colon, a value.
                if byte == 0x0D { phase = .finalLF; continue }
                guard HeadScanner.isTokenByte(byte) else { throw ResponseFramer.FramingError.malformedChunk }
                phase = .trailerName
                lineBytes += 1
            case .trailerName:
                lineBytes += 1
                guard lineBytes <= Self.maxTrailerBytes else { throw ResponseFramer.FramingError.malformedChunk }
                if byte == 0x3A { phase = .trailerValue; continue }
                guard HeadScanner.isTokenByte(byte) else { throw ResponseFramer.FramingError.malformedChunk }
            case .trailerValue:
                lineBytes += 1
                guard lineBytes <= Self.maxTrailerBytes else { throw ResponseFramer.FramingError.malformedChunk }
                if byte == 0x0D { phase = .trailerLF; continue }
                guard HeadScanner.isFieldByte(byte) else { throw ResponseFramer.FramingError.malformedChunk }
            case .trailerLF:
                guard byte == 0x0A else { throw ResponseFramer.FramingError.malformedChunk }
                phase = .trailerStart
            case .finalLF:
                guard byte == 0x0A else { throw ResponseFramer.FramingError.malformedChunk }
                phase = .done
                return i
            case .done:
                return i - 1
            }
        }
        return i
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 0x30...0x39: Int(byte - 0x30)
        case 0x41...0x46: Int(byte - 0x41 + 10)
        case 0x61...0x66: Int(byte - 0x61 + 10)
        default: nil
        }
    }
}

/// RFC 9112 §7.1.1 chunk extensions, `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`,
/// checked byte by byte: the client parses what is relayed, so nothing it could read two ways passes.
enum ExtensionSyntax {
    case start, name, afterName, valueStart, token, quoted, escaped, afterValue

    /// Whether the chunk line may end here.
    var mayEnd: Bool {
        switch self {
        case .name, .afterName, .token, .afterValue: true
        default: false
        }
    }

    func next(_ byte: UInt8) -> ExtensionSyntax? {
        let space = HeadScanner.isSpace(byte)
        let token = HeadScanner.isTokenByte(byte)
        switch self {
        case .start: return space ? .start : token ? .name : nil
        case .name: return token ? .name : byte == 0x3D ? .valueStart : byte == 0x3B ? .start : space ? .afterName : nil
        case .afterName: return space ? .afterName : byte == 0x3D ? .valueStart : byte == 0x3B ? .start : nil
        case .valueStart: return space ? .valueStart : byte == 0x22 ? .quoted : token ? .token : nil
        case .token: return token ? .token : byte == 0x3B ? .start : space ? .afterValue : nil
        case .quoted:
            if byte == 0x22 { return .afterValue }
            if byte == 0x5C { return .escaped }
            return HeadScanner.isFieldByte(byte) ? .quoted : nil
        case .escaped: return HeadScanner.isFieldByte(byte) ? .quoted : nil
        case .afterValue: return space ? .afterValue : byte == 0x3B ? .start : nil
        }
    }
}
