import Synchronization
@testable import ChillServer

/// A backend the test drives: it records scale calls and reports whatever status the test sends.
final class FakeBackend: Backend {
    let name = "fake"
    let target = UpstreamTarget(host: "127.0.0.1", port: 1)
    private let updates: AsyncStream<BackendStatus>
    private let continuation: AsyncStream<BackendStatus>.Continuation
    private let calls = Mutex<[Int]>([])
    /// When set, a scale call immediately reports the matching status (a backend that is instantly ready / gone).
    let autoRespond: Bool

    init(initial: BackendStatus = BackendStatus(), autoRespond: Bool = false) {
        (updates, continuation) = AsyncStream.makeStream()
        self.autoRespond = autoRespond
        continuation.yield(initial)
    }

    var scaleCalls: [Int] { calls.withLock { $0 } }

    func scale(to replicas: Int) async throws {
        calls.withLock { $0.append(replicas) }
        if autoRespond {
            send(BackendStatus(desiredReplicas: replicas, readyReplicas: replicas))
        }
    }

    func send(_ status: BackendStatus) { continuation.yield(status) }

    func statusUpdates() -> AsyncStream<BackendStatus> { updates }

    func run() async throws {
        while !Task.isCancelled { try await Task.sleep(for: .seconds(3600)) }
    }

    static let serving = BackendStatus(desiredReplicas: 1, readyReplicas: 1)
    static let idle = BackendStatus()
    static let starting = BackendStatus(desiredReplicas: 1, pendingReplicas: 1, progress: "Loading model")
}
