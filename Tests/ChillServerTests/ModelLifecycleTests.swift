import Testing
@testable import ChillServer

/// The whole transition table, row by row: anything not listed must be ignored.
@Suite struct ModelLifecycleTests {
    typealias P = ModelPhase
    static let crash = BackendFailure(reason: "CrashLoopBackOff", message: "back-off restarting failed container")

    static let table: [(P, LifecycleEvent, P, [LifecycleEffect])] = [
        (.scaledDown, .demand, .waking, [.scaleUp, .startWakeTimer]),
        (.draining, .demand, .waking, [.scaleUp, .startWakeTimer]),
        (.failed, .demand, .waking, [.scaleUp, .startWakeTimer]),
        (.waking, .demand, .waking, []),
        (.waking, .backendReady, .ready, [.releaseHeld]),
        (.failed, .backendReady, .ready, [.releaseHeld]),
        (.scaledDown, .backendReady, .ready, [.releaseHeld]),
        (.waking, .backendFailed(crash), .failed, [.failHeld(.backend(crash)), .scaleDown]),
        (.ready, .backendFailed(crash), .failed, [.failHeld(.backend(crash)), .scaleDown]),
        (.waking, .wakeTimedOut(after: .seconds(600)), .failed, [.failHeld(.timedOut(after: .seconds(600))), .scaleDown]),
        (.ready, .backendLost, .waking, [.scaleUp, .startWakeTimer]),
        (.ready, .idleExpired, .draining, [.scaleDown]),
        (.ready, .stopRequested, .draining, [.scaleDown]),
        (.waking, .stopRequested, .draining, [.failHeld(.stopped), .scaleDown]),
        (.scaledDown, .stopRequested, .scaledDown, [.scaleDown]),
        (.failed, .stopRequested, .scaledDown, [.scaleDown]),
        (.draining, .stopRequested, .draining, [.scaleDown]),
        (.draining, .drained, .scaledDown, []),
        (.ready, .drained, .scaledDown, []),
    ]

    static let events: [LifecycleEvent] = [
        .demand, .backendReady, .backendLost, .backendFailed(crash), .wakeTimedOut(after: .seconds(600)), .idleExpired, .stopRequested, .drained,
    ]

    @Test(arguments: ModelPhase.allCases)
    func everyPhaseFollowsTheTableAndIgnoresTheRest(phase: ModelPhase) {
        for event in Self.events {
            let expected = Self.table.first { $0.0 == phase && $0.1 == event }
            let actual = ModelLifecycle.next(from: phase, on: event)
            #expect(actual?.0 == expected?.2, "\(phase) on \(event)")
            #expect(actual?.1 == expected?.3, "\(phase) on \(event)")
        }
    }

    @Test func neverScalesDownWhileWakingExceptOnFailureOrStop() {
        for event in Self.events {
            guard let (_, effects) = ModelLifecycle.next(from: .waking, on: event), effects.contains(.scaleDown) else { continue }
            switch event {
            case .backendFailed, .wakeTimedOut, .stopRequested: continue
            default: Issue.record("waking + \(event) scales down")
            }
        }
        #expect(ModelLifecycle.next(from: .waking, on: .idleExpired) == nil)
    }
}
