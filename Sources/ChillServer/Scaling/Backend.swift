import Shared

/// Where the proxy sends traffic for a model.
struct UpstreamTarget: Sendable, Hashable, CustomStringConvertible {
    var host: String
    var port: Int
    var description: String { "\(host):\(port)" }
}

/// What a backend observes about the model's serving capacity. Sent whenever it changes.
struct BackendStatus: Sendable, Equatable {
    /// Replicas asked for (Deployment `spec.replicas`; 1 while the local process should run).
    var desiredReplicas = 0
    /// Replicas that are ready AND whose `/health` answered 200: traffic can flow.
    var readyReplicas = 0
    /// Replicas that exist but are not ready yet (Pending, pulling, starting, loading).
    var pendingReplicas = 0
    /// A failure that will not heal by waiting (CrashLoopBackOff, ImagePullBackOff, the process
    /// exited): held requests fail fast with it.
    var failure: BackendFailure?
    /// Non-fatal explanation of a slow wake, e.g. Unschedulable for lack of `nvidia.com/gpu`
    /// while nodes may be provisioning.
    var notice: String?
    /// The wake's current step (Pending → Scheduled → Pulling image → Starting → Loading model → Ready).
    var progress: String?

    var isServing: Bool { readyReplicas > 0 }
}

/// A fatal backend failure, named the way Kubernetes names it.
struct BackendFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// `CrashLoopBackOff`, `ImagePullBackOff`, `ErrImagePull`, `ProcessExited`, …
    var reason: String
    var message: String
    var description: String { message.isEmpty ? reason : "\(reason): \(message)" }
}

/// The thing chill scales: a Kubernetes Deployment or a local process. A backend only acts and
/// observes; the decisions are the `Scaler`'s.
protocol Backend: Sendable {
    /// For logs and metrics, e.g. `deployment/vllm` or `process`.
    var name: String { get }
    var target: UpstreamTarget { get }

    /// Sets the desired replica count (1 wakes, 0 frees the GPUs). Idempotent.
    func scale(to replicas: Int) async throws

    /// Every change of `BackendStatus`, starting with the current one. Single consumer (the Scaler).
    func statusUpdates() -> AsyncStream<BackendStatus>

    /// Watches, probes and supervises until cancelled. Runs for the life of chill-server.
    func run() async throws

    /// Where the next request goes: the ready replica with the fewest requests in flight. nil when
    /// no replica can take it. Every lease is given back with `returnTarget`.
    func leaseTarget() -> UpstreamTarget?
    func returnTarget(_ target: UpstreamTarget)
}

extension Backend {
    /// A backend with one address (a local process, a Service) has nothing to balance.
    func leaseTarget() -> UpstreamTarget? { target }
    func returnTarget(_ target: UpstreamTarget) {}
}
