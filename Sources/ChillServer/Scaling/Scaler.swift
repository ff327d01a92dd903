import Logging

/// Settings of one model's scaling.
struct ScalingPolicy: Sendable {
    var model: String
    var idleTimeout: Duration = .seconds(300)
    var wakeTimeout: Duration = .seconds(600)
    /// Requests held while waking; past this, 429 + Retry-After.
    var maxHeld = 1000
    /// After a failed wake, new requests fail at once with the same cause for this long, instead of
    /// starting a crash-looping model again for every request.
    var failureCooldown: Duration = .seconds(10)
    /// GPUs freed while scaled down, for the savings figure.
    var gpus = 1
}

/// Why a request could not be admitted.
enum AdmissionError: Error, Sendable, Equatable {
    case tooManyHeld(limit: Int)
    case wakeFailed(WakeFailure)
    /// chill-server is shutting down: nothing new is held, and what was held is answered at once.
    case shuttingDown
}

/// Owns one model's lifecycle: turns demand, backend observations and timers into `ModelLifecycle`
/// events, carries out their effects, and holds cold requests until the model serves.
actor Scaler<C: Clock> where C.Duration == Duration {
    nonisolated let policy: ScalingPolicy
    nonisolated let gate: ActivityGate<C>
    nonisolated let backend: any Backend
    private let clock: C
    private let logger: Logger
    nonisolated let metrics: ChillMetrics?

    private(set) var phase: ModelPhase = .scaledDown
    private(set) var backendStatus = BackendStatus()
    private var observedBackend = false
    private var held: [Int: CheckedContinuation<Void, any Error>] = [:]
    private var nextHeldID = 0
    private var wakeGeneration = 0
    private var wakeStartedAt: C.Instant?
    private var lastFailure: (failure: WakeFailure, at: C.Instant)?
    private var stopWhenIdle = false
    private var phaseSince: C.Instant
    private var stats = WakeStats()
    private let startedAt: C.Instant
    private var lastWakeReadyAt: C.Instant?
    /// The only path to `backend.scale`: latest wins, never two calls at once.
    nonisolated let actuator = ReplicaActuator()
    /// Told after every phase change (the controller writes status and reconciles on it).
    private let onChange: @Sendable () -> Void

    init(policy: ScalingPolicy, backend: any Backend, clock: C, logger: Logger, metrics: ChillMetrics? = nil,
         onChange: @escaping @Sendable () -> Void = {}) {
        self.policy = policy
        self.backend = backend
        self.clock = clock
        self.logger = logger
        self.metrics = metrics
        self.onChange = onChange
        self.gate = ActivityGate(clock: clock)
        self.phaseSince = clock.now
        self.startedAt = clock.now
    }

    /// Figures a previous chill-server wrote into the model's status, so totals survive restarts.
    func restore(scaledDownSeconds: Double?, lastWakeSeconds: Double?) {
        if let scaledDownSeconds { stats.scaledDownSeconds = max(stats.scaledDownSeconds, scaledDownSeconds) }
        if let lastWakeSeconds, stats.lastWakeSeconds == nil { stats.lastWakeSeconds = lastWakeSeconds }
    }

    // MARK: - Running

    /// Follows the backend and the idle timer until cancelled.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.followBackend() }
            group.addTask { await self.idleLoop() }
            group.addTask { await self.actuate() }
            await group.next()
            group.cancelAll()
        }
        failAllHeld(.stopped)
    }

    private func followBackend() async {
        for await status in backend.statusUpdates() {
            observe(status)
        }
    }

    /// Sleeps until the idle deadline, and checks again; wakes early only to re-arm when the last
    /// request ends. Never fires while anything is in flight, held, or still pending.
    private func idleLoop() async {
        var signals = gate.idleSignals.makeAsyncIterator()
        while !Task.isCancelled {
            let snapshot = gate.snapshot
            if phase == .ready, snapshot.inFlight == 0, held.isEmpty, backendStatus.pendingReplicas == 0 {
                let deadline = snapshot.lastActivity.advanced(by: policy.idleTimeout)
                if clock.now >= deadline {
                    // Checked and closed in one step: a request admitted after the snapshot keeps the model.
                    if gate.closeIfIdle(for: policy.idleTimeout) {
                        handle(.idleExpired, reason: "idle for \(policy.idleTimeout.formattedSeconds)")
                    }
                    continue
                }
                do { try await clock.sleep(until: deadline, tolerance: nil) } catch { return }
            } else {
                guard await signals.next() != nil else { return }
            }
        }
    }

    // MARK: - Requests

    /// For a cold request: starts a wake if needed and returns once the model serves. Counts the
    /// request in flight before returning. Throws `AdmissionError`, or `CancellationError` when the
    /// client went away (the held slot is released at once).
    func admit() async throws {
        if gate.enterIfReady() { return }
        if shuttingDown { throw AdmissionError.shuttingDown }
        if phase == .failed, let lastFailure, clock.now < lastFailure.at.advanced(by: policy.failureCooldown) {
            throw AdmissionError.wakeFailed(lastFailure.failure)
        }
        guard held.count < policy.maxHeld else { throw AdmissionError.tooManyHeld(limit: policy.maxHeld) }
        let id = nextHeldID
        nextHeldID += 1
        gate.touch()
        do {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    if Task.isCancelled { continuation.resume(throwing: CancellationError()); return }
                    held[id] = continuation
                    metrics?.setHeld(held.count)
                    handle(.demand, reason: "request")
                }
            } onCancel: {
                Task { await self.releaseHeld(id) }
            }
        } catch let failure as WakeFailure {
            throw AdmissionError.wakeFailed(failure)
        }
    }

    private var shuttingDown = false

    /// Graceful shutdown: held requests can't be served before the process exits, so they are
    /// answered now (503 + Retry-After) instead of waiting out the grace. Returns how many were held.
    func rejectHeld() -> Int {
        shuttingDown = true
        let waiting = held
        held.removeAll()
        metrics?.setHeld(0)
        for (_, continuation) in waiting { continuation.resume(throwing: AdmissionError.shuttingDown) }
        return waiting.count
    }

    private func releaseHeld(_ id: Int) {
        guard let continuation = held.removeValue(forKey: id) else { return }
        metrics?.setHeld(held.count)
        if held.isEmpty { gate.nudge() }
        continuation.resume(throwing: CancellationError())
    }

    /// `POST /proxy/operations/start`, `kubectl chill start`.
    func start() {
        stopWhenIdle = false
        gate.touch()
        handle(.demand, reason: "start requested")
    }

    /// `POST /proxy/operations/stop`: scale down once in-flight requests finish, or at once with `force`.
    func stop(force: Bool) {
        if force || gate.snapshot.inFlight == 0 {
            stopWhenIdle = false
            handle(.stopRequested, reason: force ? "forced stop" : "stop requested")
        } else {
            stopWhenIdle = true
            let gate = self.gate
            Task {
                await gate.waitUntilNothingInFlight()
                self.stopIfStillWanted()
            }
        }
    }

    private func stopIfStillWanted() {
        guard stopWhenIdle else { return }  // a start() came in meanwhile
        stopWhenIdle = false
        handle(.stopRequested, reason: "stop requested, in-flight requests finished")
    }

    // MARK: - Backend observations

    func hasObservedBackend() -> Bool { observedBackend }

    func observe(_ status: BackendStatus) {
        observedBackend = true
        let previous = backendStatus
        backendStatus = status
        if status.pendingReplicas != previous.pendingReplicas { gate.nudge() }
        if status != previous, let notice = status.notice, notice != previous.notice {
            logger.info("backend notice", metadata: ["model": "\(policy.model)", "notice": "\(notice)"])
        }
        if status.isServing {
            handle(.backendReady, reason: "backend ready")
        } else if let failure = status.failure, phase == .waking {
            handle(.backendFailed(failure), reason: failure.description)
        } else if phase == .ready, status.desiredReplicas > 0 {
            // A model that was serving and lost its backend (a crash, an OOM kill) gets one wake
            // before it is called failed: a failure that persists fails that wake at once.
            handle(.backendLost, reason: status.failure.map { "backend stopped serving: \($0)" } ?? "backend stopped serving")
        } else if status.desiredReplicas == 0, status.readyReplicas == 0, status.pendingReplicas == 0 {
            handle(.drained, reason: "backend at zero replicas")
        } else if phase == .scaledDown, status.desiredReplicas > 0, status.failure == nil {
            // Scaled up by someone else (kubectl, a previous chill): follow it as a wake.
            handle(.demand, reason: "backend scaled up externally")
        }
    }

    // MARK: - The state machine

    private func handle(_ event: LifecycleEvent, reason: String) {
        guard let (next, effects) = ModelLifecycle.next(from: phase, on: event) else { return }
        let previous = phase
        if next != previous {
            let now = clock.now
            if previous == .scaledDown { stats.scaledDownSeconds += phaseSince.duration(to: now).seconds }
            phase = next
            phaseSince = now
            gate.setReady(next == .ready)
            metrics?.setState(next)
            logger.info(
                "model \(previous.rawValue) → \(next.rawValue)",
                metadata: ["model": "\(policy.model)", "reason": "\(reason)", "backend": "\(backend.name)"])
        }
        for effect in effects { perform(effect) }
        if next != previous { onChange() }
    }

    private func perform(_ effect: LifecycleEffect) {
        switch effect {
        case .scaleUp:
            wakeStartedAt = clock.now
            scale(to: 1)
        case .scaleDown:
            scale(to: 0)
        case .startWakeTimer:
            wakeGeneration += 1
            let generation = wakeGeneration
            let timeout = policy.wakeTimeout
            let clock = self.clock
            Task {
                try await clock.sleep(for: timeout)
                self.wakeTimerFired(generation)
            }
        case .releaseHeld:
            recordWake(result: nil)
            let waiting = held
            held.removeAll()
            metrics?.setHeld(0)
            for (_, continuation) in waiting {
                gate.enter()
                continuation.resume()
            }
        case .failHeld(let failure):
            recordWake(result: failure)
            lastFailure = (failure, clock.now)
            failAllHeld(failure)
        }
    }

    private func failAllHeld(_ failure: WakeFailure) {
        let waiting = held
        held.removeAll()
        metrics?.setHeld(0)
        for (_, continuation) in waiting { continuation.resume(throwing: failure) }
    }

    private func wakeTimerFired(_ generation: Int) {
        guard generation == wakeGeneration, phase == .waking else { return }
        handle(.wakeTimedOut(after: policy.wakeTimeout), reason: "wake timeout")
    }

    private func recordWake(result failure: WakeFailure?) {
        guard let started = wakeStartedAt else { return }
        wakeStartedAt = nil
        let seconds = started.duration(to: clock.now).seconds
        if let failure {
            stats.failedWakes += 1
            metrics?.recordWake(result: failure.resultLabel, seconds: nil)
        } else {
            stats.wakes += 1
            stats.lastWakeSeconds = seconds
            lastWakeReadyAt = clock.now
            stats.totalWakeSeconds += seconds
            metrics?.recordWake(result: "success", seconds: seconds)
        }
    }

    private func scale(to replicas: Int) {
        actuator.request(replicas)
    }

    /// Carries out scale requests in order, retrying failures with capped exponential backoff.
    private func actuate() async {
        let backend = self.backend
        let logger = self.logger
        let clock = self.clock
        await actuator.run(
            apply: { replicas in try await backend.scale(to: replicas) },
            failed: { replicas, error in
                logger.error("scaling failed", metadata: ["replicas": "\(replicas)", "error": "\(error)"])
                await self.scaleFailed(replicas: replicas, error: error)
            },
            retryDelay: { attempt in
                try await clock.sleep(for: .milliseconds(min(30_000, 500 << min(attempt, 6))))
            })
    }

    private func scaleFailed(replicas: Int, error: any Error) {
        // Only a failed wake is a failure of the model; a failed scale-down is retried until it lands.
        guard replicas > 0, actuator.desired == replicas else { return }
        handle(.backendFailed(BackendFailure(reason: "ScaleFailed", message: "\(error)")), reason: "scale request failed")
    }

    // MARK: - Reporting

    func snapshot() -> ScalerSnapshot {
        let now = clock.now
        let gateState = gate.snapshot
        var stats = self.stats
        if phase == .scaledDown { stats.scaledDownSeconds += phaseSince.duration(to: now).seconds }
        let idle = gateState.inFlight > 0 || !held.isEmpty ? 0 : gateState.lastActivity.duration(to: now).seconds
        return ScalerSnapshot(
            phase: phase, inFlight: gateState.inFlight, held: held.count, idleSeconds: max(0, idle),
            phaseSeconds: phaseSince.duration(to: now).seconds, uptimeSeconds: startedAt.duration(to: now).seconds,
            stats: stats, backend: backendStatus, lastFailure: lastFailure.map { "\($0.failure)" },
            lastWakeReadySecondsAgo: lastWakeReadyAt.map { $0.duration(to: now).seconds },
            lastActivitySecondsAgo: max(0, gateState.lastActivity.duration(to: now).seconds))
    }
}

struct WakeStats: Sendable {
    var wakes = 0
    var failedWakes = 0
    var lastWakeSeconds: Double?
    var totalWakeSeconds = 0.0
    var scaledDownSeconds = 0.0
}

/// A model's state for `/proxy/stats` and the metrics scrape.
struct ScalerSnapshot: Sendable {
    var phase: ModelPhase
    var inFlight: Int
    var held: Int
    var idleSeconds: Double
    var phaseSeconds: Double
    var uptimeSeconds: Double
    var stats: WakeStats
    var backend: BackendStatus
    var lastFailure: String?
    /// Seconds since the last successful wake became ready.
    var lastWakeReadySecondsAgo: Double? = nil
    var lastActivitySecondsAgo: Double = 0
}
