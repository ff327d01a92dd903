import Synchronization

/// What the awaiting side of one transfer sees: the response (or, for a stream, its head), then for a
/// stream the body through a bounded buffer. Shared between the `CurlMulti` thread and Swift tasks, so
/// every field sits behind one lock.
final class Transfer: Sendable {
    let isStreaming: Bool
    /// Body bytes held for a lagging consumer before the transfer is paused.
    let bufferLimit: Int
    private let cancelled = Atomic<Bool>(false)
    private let state = Mutex(State())

    private struct State {
        var response: HTTPResponse?
        var responseWaiter: CheckedContinuation<HTTPResponse, any Error>?
        /// Set once the transfer is over; for a stream, after the buffered chunks are read.
        var ended = false
        var failure: (any Error)?
        var chunks: [[UInt8]] = []
        var bufferedBytes = 0
        var paused = false
        var reader: CheckedContinuation<[UInt8]?, any Error>?
    }

    init(streaming: Bool, bufferLimit: Int = 1 << 20) {
        self.isStreaming = streaming
        self.bufferLimit = max(1, bufferLimit)
    }

    var isCancelled: Bool { cancelled.load(ordering: .acquiring) }
    var isEnded: Bool { state.withLock { $0.ended } }

    /// Marks the transfer cancelled and wakes whoever waits with `CancellationError`. Returns whether it
    /// was still running (so the multi thread must drop its easy handle).
    @discardableResult
    func cancel() -> Bool {
        cancelled.store(true, ordering: .releasing)
        return end(with: CancellationError())
    }

    // MARK: - The multi thread's side

    /// The response (buffered transfer) or the head of a 2xx stream.
    func respond(_ response: HTTPResponse) {
        let waiter: CheckedContinuation<HTTPResponse, any Error>? = state.withLock { s in
            guard !s.ended, s.response == nil else { return nil }
            s.response = response
            defer { s.responseWaiter = nil }
            return s.responseWaiter
        }
        waiter?.resume(returning: response)
    }

    /// Offers streamed body bytes. False means "buffer full": curl must pause and offer them again later.
    func offer(_ bytes: [UInt8]) -> Bool {
        enum Outcome { case handedOver(CheckedContinuation<[UInt8]?, any Error>), buffered, full }
        let outcome: Outcome = state.withLock { s in
            if let reader = s.reader {
                s.reader = nil
                return .handedOver(reader)
            }
            if s.bufferedBytes >= bufferLimit {
                s.paused = true
                return .full
            }
            s.chunks.append(bytes)
            s.bufferedBytes += bytes.count
            return .buffered
        }
        switch outcome {
        case .handedOver(let reader): reader.resume(returning: bytes); return true
        case .buffered: return true
        case .full: return false
        }
    }

    /// The transfer is over: `nil` for a clean end. Returns whether this call ended it.
    @discardableResult
    func end(with error: (any Error)?) -> Bool {
        let (ended, waiter, reader, failure): (Bool, CheckedContinuation<HTTPResponse, any Error>?, CheckedContinuation<[UInt8]?, any Error>?, (any Error)?) = state.withLock { s in
            guard !s.ended else { return (false, nil, nil, nil) }
            s.ended = true
            if s.response == nil && error == nil {
                // Ended cleanly without a response: the caller of `response()` must still hear something.
                s.failure = TransportError(url: "", curlCode: 0, detail: "the transfer ended without a response")
            } else {
                s.failure = error
            }
            if error is CancellationError { s.chunks.removeAll(); s.bufferedBytes = 0 }
            let waiter = s.responseWaiter
            s.responseWaiter = nil
            // A parked reader means the buffer is empty: it hears the end now, and only once.
            let reader = s.reader
            s.reader = nil
            let failure = s.failure
            if reader != nil { s.failure = nil }
            return (true, waiter, reader, failure)
        }
        if let waiter { waiter.resume(throwing: failure ?? CancellationError()) }
        if let reader {
            if let failure { reader.resume(throwing: failure) } else { reader.resume(returning: nil) }
        }
        return ended
    }

    // MARK: - The awaiting side

    /// Waits for the response (buffered) or the head (stream).
    func response() async throws -> HTTPResponse {
        try await withCheckedThrowingContinuation { continuation in
            let ready: Result<HTTPResponse, any Error>? = state.withLock { s in
                if let response = s.response { return .success(response) }
                if s.ended { return .failure(s.failure ?? CancellationError()) }
                s.responseWaiter = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    /// The next body chunk, nil at the end. `resume` runs when a paused transfer has room again.
    func nextChunk(resume: () -> Void) async throws -> [UInt8]? {
        enum Take { case chunk([UInt8], resume: Bool), end((any Error)?), wait }
        func take(_ s: inout State) -> Take {
            if !s.chunks.isEmpty {
                let chunk = s.chunks.removeFirst()
                s.bufferedBytes -= chunk.count
                let wake = s.paused && s.bufferedBytes <= bufferLimit / 2
                if wake { s.paused = false }
                return .chunk(chunk, resume: wake)
            }
            if s.ended {
                defer { s.failure = nil }
                return .end(s.failure)
            }
            return .wait
        }
        switch state.withLock({ take(&$0) }) {
        case .chunk(let chunk, let wake):
            if wake { resume() }
            return chunk
        case .end(let failure?): throw failure
        case .end(nil): return nil
        case .wait: break
        }
        return try await withCheckedThrowingContinuation { continuation in
            let now: Take = state.withLock { s in
                let t = take(&s)
                if case .wait = t { s.reader = continuation }
                return t
            }
            switch now {
            case .chunk(let chunk, let wake):
                if wake { resume() }
                continuation.resume(returning: chunk)
            case .end(let failure?): continuation.resume(throwing: failure)
            case .end(nil): continuation.resume(returning: nil)
            case .wait: break
            }
        }
    }

    /// For tests: bytes held for the consumer, and whether curl is paused.
    var bufferState: (bytes: Int, paused: Bool) { state.withLock { ($0.bufferedBytes, $0.paused) } }
}
