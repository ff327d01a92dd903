/// What the data plane needs from the model it serves: the warm check, the cold wait, and where to
/// send bytes. The `Scaler` provides it; tests may provide their own.
protocol ProxyModel: Sendable {
    /// The name clients send in `model`.
    var name: String { get }
    /// This model's series in the shared metrics registry.
    var metrics: ChillMetrics? { get }
    /// A ready replica to send this request to (see `Backend.leaseTarget`).
    func leaseTarget() -> UpstreamTarget?
    func returnTarget(_ target: UpstreamTarget)
    /// True while the model serves (the warm path is open).
    var isServing: Bool { get }
    /// Counts the request in flight when the model is ready (the warm path: one lock, no await).
    func enterIfReady() -> Bool
    /// The request ended; the idle timer restarts.
    func exit()
    /// Waits for the model to serve (starting a wake), then counts the request in flight.
    /// Throws `AdmissionError`, or `CancellationError` when the client left.
    func admit() async throws
}

/// What the admin and status routes need: start, stop, and a snapshot.
protocol ModelControl: Sendable {
    /// GPUs the model frees while scaled down, for the savings figures.
    var gpus: Int { get }
    func start() async
    func stop(force: Bool) async
    func snapshot() async -> ScalerSnapshot
    /// Shutting down: answers every held request (503) and holds no more; returns how many there were.
    func rejectHeld() async -> Int
    /// True once the first backend observation arrived (for /readyz).
    func hasObservedBackend() async -> Bool
}

extension Scaler: ModelControl {}

extension Scaler: ProxyModel {
    nonisolated var name: String { policy.model }
    nonisolated var gpus: Int { policy.gpus }
    nonisolated var isServing: Bool { gate.snapshot.isReady }
    nonisolated func leaseTarget() -> UpstreamTarget? { backend.leaseTarget() }
    nonisolated func returnTarget(_ target: UpstreamTarget) { backend.returnTarget(target) }
    nonisolated func enterIfReady() -> Bool { gate.enterIfReady() }
    nonisolated func exit() { gate.exit() }
}

extension Sequence where Element: Sendable {
    func asyncMap<T>(_ transform: (Element) async -> T) async -> [T] {
        var result: [T] = []
        for element in self { result.append(await transform(element)) }
        return result
    }
}

extension String {
    /// `%41` → `A`, `+` → space; malformed escapes are kept as they are.
    var removingPercentEncodingLossy: String {
        var bytes: [UInt8] = []
        var utf8 = Array(self.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "+") { bytes.append(32); continue }
            if byte == UInt8(ascii: "%"), utf8.count >= 2, let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(value)
                utf8 = utf8.dropFirst(2)
                continue
            }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
