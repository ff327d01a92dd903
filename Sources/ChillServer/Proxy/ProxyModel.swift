/// What the data plane needs from the model it serves: the warm check, the cold wait, and where to
/// send bytes. The `Scaler` provides it; tests may provide their own.
protocol ProxyModel: Sendable {
    var name: String { get }
    var target: UpstreamTarget { get }
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
    func start() async
    func stop(force: Bool) async
    func snapshot() async -> ScalerSnapshot
    /// True once the first backend observation arrived (for /readyz).
    func hasObservedBackend() async -> Bool
}

extension Scaler: ModelControl {}

extension Scaler: ProxyModel {
    nonisolated var name: String { policy.model }
    nonisolated var target: UpstreamTarget { backend.target }
    nonisolated func enterIfReady() -> Bool { gate.enterIfReady() }
    nonisolated func exit() { gate.exit() }
}
