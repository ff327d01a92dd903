import Synchronization

/// The state of one libcurl transfer, shared between curl's callbacks (on the transfer's thread) and
/// the awaiting task. Buffers are touched only by the transfer thread until it finishes.
final class Transfer: @unchecked Sendable {
    let isStreaming: Bool
    private let cancelled = Atomic<Bool>(false)
    private let chunks: AsyncThrowingStream<[UInt8], any Error>.Continuation?
    private let head = Mutex<HeadState>(.waiting(nil))

    var status = 0
    var headers: [(name: String, value: String)] = []
    var body: [UInt8] = []
    private var headerStatus = 0

    private enum HeadState {
        case waiting(CheckedContinuation<Void, any Error>?)
        case delivered
        /// The transfer ended before anyone awaited the head.
        case finished((any Error)?)
    }

    init(streaming: Bool, chunks: AsyncThrowingStream<[UInt8], any Error>.Continuation? = nil) {
        self.isStreaming = streaming
        self.chunks = chunks
    }

    var isCancelled: Bool { cancelled.load(ordering: .relaxed) }
    func cancel() { cancelled.store(true, ordering: .relaxed) }

    func receiveHeader(_ line: String) {
        if line.hasPrefix("HTTP/") {
            headers = []
            let parts = line.split(separator: " ", maxSplits: 2)
            headerStatus = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        } else if line == "\r\n" || line == "\n" {
            // End of a header block; 1xx blocks are followed by the real one.
            if headerStatus >= 200 {
                status = headerStatus
                if isStreaming && (200..<300).contains(status) { deliverHead(nil) }
            }
        } else if let colon = line.firstIndex(of: ":") {
            let name = String(line[..<colon])
            let value = String(line[line.index(after: colon)...]).trimmingWhitespace
            headers.append((name, value))
        }
    }

    /// Returns false to make curl abort the transfer.
    func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if isCancelled { return false }
        if isStreaming && (200..<300).contains(status), let chunks {
            if case .terminated = chunks.yield(Array(bytes)) { cancel(); return false }
        } else {
            body.append(contentsOf: bytes)
        }
        return true
    }

    func setHead(_ continuation: CheckedContinuation<Void, any Error>) {
        let finished: ((any Error)?)? = head.withLock { state in
            switch state {
            case .waiting: state = .waiting(continuation); return nil
            case .delivered: return .some(nil)
            case .finished(let error): state = .delivered; return .some(error)
            }
        }
        if let finished {
            if let error = finished { continuation.resume(throwing: error) } else { continuation.resume() }
        }
    }

    private func deliverHead(_ error: (any Error)?) {
        let continuation: CheckedContinuation<Void, any Error>? = head.withLock { state in
            switch state {
            case .waiting(let c?): state = .delivered; return c
            case .waiting(nil): state = .finished(error); return nil
            case .delivered, .finished: return nil
            }
        }
        if let continuation {
            if let error { continuation.resume(throwing: error) } else { continuation.resume() }
        }
    }

    /// Called once on the transfer thread when curl returns.
    func finish(error: (any Error)?) {
        if let error {
            deliverHead(error)
            chunks?.finish(throwing: error)
        } else if !(200..<300).contains(status) {
            let apiError = KubeError.fromResponse(code: status, body: body)
            deliverHead(apiError)
            chunks?.finish(throwing: apiError)
        } else {
            deliverHead(nil)
            chunks?.finish()
        }
    }
}
