import NIOCore
import NIOHTTP1

/// Request parts a client pipelined behind the request being answered, kept in arrival order until
/// that response is written. `ProxyHandler` keeps them itself rather than through NIO's
/// `HTTPServerPipelineHandler`, which stops reading the socket during every response and starts
/// again after it: two `epoll_ctl` calls per request (measured: bench/, docs/PERFORMANCE.md).
/// Reading stops only when this queue is over its bound.
struct PipelinedRequests {
    enum Entry {
        case part(HTTPServerRequestPart)
        /// The parser rejected what followed: answered in its turn, then the connection closes.
        case parserError(HTTPParserError)
    }

    private var entries = CircularBuffer<Entry>()
    private var bodyBytes = 0
    /// Past this many body bytes or entries, the client's reads are held until the queue drains.
    let maxBodyBytes: Int
    let maxEntries: Int

    init(maxBodyBytes: Int = 1 << 20, maxEntries: Int = 256) {
        self.maxBodyBytes = maxBodyBytes
        self.maxEntries = maxEntries
    }

    var isEmpty: Bool { entries.isEmpty }
    var isFull: Bool { bodyBytes >= maxBodyBytes || entries.count >= maxEntries }
    var hasParserError: Bool { entries.contains { if case .parserError = $0 { true } else { false } } }

    mutating func append(_ entry: Entry) {
        if case .part(.body(let body)) = entry { bodyBytes += body.readableBytes }
        entries.append(entry)
    }

    mutating func popFirst() -> Entry? {
        guard let entry = entries.popFirst() else { return nil }
        if case .part(.body(let body)) = entry { bodyBytes -= body.readableBytes }
        return entry
    }

    mutating func removeAll() {
        entries.removeAll()
        bodyBytes = 0
    }
}
