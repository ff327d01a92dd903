import Logging
import Shared
import Synchronization

/// One served VLLMModel inside chill-server: its Scaler (the lifecycle), its backend (the workload
/// as the informers show it), and what the controller remembers between reconciles.
final class ModelRuntime: Sendable {
    let name: String
    let servedName: String
    let policy: ScalingPolicy
    let scaler: Scaler<ContinuousClock>
    let backend: ClusterModelBackend
    private let stopSignal = LoopSignal()
    let memory = Mutex(Memory())

    /// What the controller keeps between reconciles of this model.
    struct Memory: Sendable {
        /// The generation whose Service and cache claim were applied.
        var appliedGeneration: Int?
        /// The `chill.dev/requested-at` last acted on.
        var handledRequestAt: String?
        var handledState: String?
        /// A malformed `requested-at` already warned about.
        var ignoredRequestAt: String?
        /// The status last written (to write only changes).
        var writtenStatus: JSONValue?
        var writtenActivity: Double?
        var scaledDown = ScaledDownWindow()
        /// A drain asked of the Scaler for a switch (graceful, then forced).
        var drainAsked = false
        var drainForced = false
    }

    init(name: String, servedName: String, policy: ScalingPolicy, backend: ClusterModelBackend, metrics: ChillMetrics, logger: Logger,
         onChange: @escaping @Sendable () -> Void) {
        self.name = name
        self.servedName = servedName
        self.policy = policy
        self.backend = backend
        self.scaler = Scaler(policy: policy, backend: backend, clock: ContinuousClock(), logger: logger, metrics: metrics, onChange: onChange)
        metrics.setState(.scaledDown)
    }

    var handle: ServedModelHandle { ServedModelHandle(id: name, servedName: servedName, proxy: scaler, control: scaler) }

    /// Runs the Scaler and the health probes until `stop()`.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.scaler.run() }
            group.addTask { try? await self.backend.run() }
            group.addTask { await self.stopSignal.wait(timeout: nil) }
            await group.next()
            group.cancelAll()
        }
    }

    func stop() { stopSignal.signal() }
}

/// Seconds spent scaled down in the last 24 hours, from hourly buckets fed with the growth of the
/// running total at each status write.
struct ScaledDownWindow: Sendable, Equatable {
    private var buckets: [Int: Double] = [:]   // hour number since the epoch → seconds
    private var lastTotal: Double?

    /// `total`: the model's lifetime scaled-down seconds now; `now`: Unix seconds.
    mutating func record(total: Double, now: Double) {
        let hour = Int(now / 3600)
        if let lastTotal, total > lastTotal { buckets[hour, default: 0] += total - lastTotal }
        lastTotal = total
        buckets = buckets.filter { $0.key > hour - 24 }
    }

    /// A previous chill-server's figure, counted in the current hour (the split is not kept).
    mutating func restore(_ seconds: Double, now: Double) {
        guard buckets.isEmpty else { return }
        buckets[Int(now / 3600)] = min(seconds, 86_400)
    }

    func seconds(now: Double) -> Double {
        let hour = Int(now / 3600)
        return min(86_400, buckets.filter { $0.key > hour - 24 }.values.reduce(0, +))
    }
}
