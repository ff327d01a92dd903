/// A streaming response's body, chunk by chunk, for one consumer. The transfer holds at most about
/// `bufferLimit` bytes for a consumer that lags; past that curl pauses it (and the server's flow
/// control takes over) until the consumer catches up. Cancelling the consuming task, or dropping the
/// body, aborts the transfer at once.
public struct ResponseBody: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    let reader: BodyReader

    public func makeAsyncIterator() -> Iterator { Iterator(reader: reader) }

    public struct Iterator: AsyncIteratorProtocol {
        let reader: BodyReader
        public mutating func next() async throws -> [UInt8]? { try await reader.next() }
    }
}

/// Owns the consumer's end of a streaming transfer: aborts it when nobody can read it any more.
final class BodyReader: Sendable {
    let transfer: Transfer
    private let multi: CurlMulti

    init(transfer: Transfer, multi: CurlMulti) {
        self.transfer = transfer
        self.multi = multi
    }

    deinit { cancel() }

    func next() async throws -> [UInt8]? {
        let transfer = self.transfer, multi = self.multi
        return try await withTaskCancellationHandler {
            try await transfer.nextChunk { multi.submit(.resume(transfer)) }
        } onCancel: {
            self.cancel()
        }
    }

    func cancel() {
        if transfer.cancel() { multi.submit(.remove(transfer)) }
    }
}
