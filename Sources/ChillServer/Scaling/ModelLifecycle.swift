/// The one state machine of a model's lifecycle. Pure: `next(from:on:)` says where an event leads
/// and which effects the `Scaler` must carry out; anything not in the table is ignored, so an
/// illegal move (say, scaling down while waking) cannot happen by accident.
///
///     ScaledDown ──demand──▶ Waking ──backendReady──▶ Ready ──idleExpired──▶ Draining ──drained──▶ ScaledDown
///                              │  ▲                    │                        │
///                  failure / timeout  backendLost ◀────┘            demand ─────┘ (wakes again)
///                              ▼
///                            Failed ──demand──▶ Waking
enum ModelPhase: String, Sendable, CaseIterable, Codable {
    case scaledDown = "ScaledDown"
    case waking = "Waking"
    case ready = "Ready"
    case draining = "Draining"
    case failed = "Failed"

    /// `chill_model_state` gauge value.
    var metricValue: Double {
        switch self {
        case .scaledDown: 0
        case .waking: 1
        case .ready: 2
        case .draining: 3
        case .failed: 4
        }
    }
}

enum LifecycleEvent: Sendable, Equatable {
    /// A request (or `start`) needs the model.
    case demand
    /// The backend serves: replicas ready and `/health` 200.
    case backendReady
    /// The backend stopped serving on its own (engine died, pod evicted) while wanted.
    case backendLost
    /// A failure that waiting won't fix (CrashLoopBackOff, ImagePullBackOff, process exited).
    case backendFailed(BackendFailure)
    case wakeTimedOut(after: Duration)
    /// Idle for the idle timeout with nothing in flight and nothing pending.
    case idleExpired
    /// `stop`: scale to zero now (in-flight work was already waited for, or `--force`).
    case stopRequested
    /// The backend reports zero replicas.
    case drained
}

enum LifecycleEffect: Sendable, Equatable {
    case scaleUp
    case scaleDown
    case startWakeTimer
    /// Held requests go to the backend.
    case releaseHeld
    /// Held requests get 503 naming the cause.
    case failHeld(WakeFailure)
}

/// Why held requests could not be served.
enum WakeFailure: Error, Sendable, Equatable, CustomStringConvertible {
    case backend(BackendFailure)
    case timedOut(after: Duration)
    case stopped

    var description: String {
        switch self {
        case .backend(let failure): "the model failed to start: \(failure)"
        case .timedOut(let after): "the model did not become ready within the wake timeout (\(after.formattedSeconds))"
        case .stopped: "the model was stopped by an operator while waking"
        }
    }

    /// `chill_wakes_total{result}` label.
    var resultLabel: String {
        switch self {
        case .backend: "failed"
        case .timedOut: "timeout"
        case .stopped: "stopped"
        }
    }
}

enum ModelLifecycle {
    static func next(from phase: ModelPhase, on event: LifecycleEvent) -> (ModelPhase, [LifecycleEffect])? {
        switch (phase, event) {
        // Waking up
        case (.scaledDown, .demand), (.draining, .demand), (.failed, .demand):
            return (.waking, [.scaleUp, .startWakeTimer])
        case (.waking, .demand):
            return (.waking, [])  // concurrent cold requests: exactly one scale-up
        case (.waking, .backendReady), (.failed, .backendReady), (.scaledDown, .backendReady):
            return (.ready, [.releaseHeld])
        case (.waking, .backendFailed(let failure)):
            return (.failed, [.failHeld(.backend(failure)), .scaleDown])
        case (.waking, .wakeTimedOut(let after)):
            return (.failed, [.failHeld(.timedOut(after: after)), .scaleDown])

        // Serving
        case (.ready, .backendLost):
            return (.waking, [.scaleUp, .startWakeTimer])
        case (.ready, .backendFailed(let failure)):
            return (.failed, [.failHeld(.backend(failure)), .scaleDown])
        case (.ready, .idleExpired), (.ready, .stopRequested):
            return (.draining, [.scaleDown])

        // Stopping
        case (.waking, .stopRequested):
            return (.draining, [.failHeld(.stopped), .scaleDown])
        case (.scaledDown, .stopRequested), (.failed, .stopRequested), (.draining, .stopRequested):
            return (phase == .failed ? .scaledDown : phase, [.scaleDown])
        case (.draining, .drained), (.ready, .drained):
            return (.scaledDown, [])

        default:
            return nil
        }
    }
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }

    /// `90s`, `2.5s`.
    var formattedSeconds: String {
        let value = seconds
        return value == value.rounded() ? "\(Int(value))s" : "\((value * 10).rounded() / 10)s"
    }
}
