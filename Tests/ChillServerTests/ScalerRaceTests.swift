import Logging
import Synchronization
import Testing
import TestSupport
@testable import ChillServer

/// The two races item 8 names, made deterministic: the idle check and the gate close are one step,
/// and scale calls never overlap or reorder.
@Suite(.timeLimit(.minutes(1))) struct ScalerRaceTests {
    @Test func closeIfIdleIsOneStepWithTheInFlightCheck() {
        let clock = ManualClock()
        let gate = ActivityGate(clock: clock)
        gate.setReady(true)
        #expect(gate.enterIfReady())
        clock.advance(by: .seconds(600))
        // A request in flight: the gate stays open, however old the last activity.
        #expect(!gate.closeIfIdle(for: .seconds(300)))
        gate.exit()
        // Just ended: not idle yet.
        #expect(!gate.closeIfIdle(for: .seconds(300)))
        clock.advance(by: .seconds(300))
        #expect(gate.closeIfIdle(for: .seconds(300)))
        // Closed in the same step: a request arriving now is held for a wake, not scaled away under it.
        #expect(!gate.enterIfReady())
    }

    /// A backend whose scale-up blocks until the test releases it, recording overlap.
    final class SlowBackend: Backend {
        let name = "slow"
        let target = UpstreamTarget(host: "127.0.0.1", port: 1)
        private let state = Mutex<(calls: [Int], running: Int, overlapped: Bool)>(([], 0, false))
        private let gateOpen = Mutex<CheckedContinuation<Void, Never>?>(nil)
        private let (updates, continuation) = AsyncStream<BackendStatus>.makeStream()

        var calls: [Int] { state.withLock { $0.calls } }
        var overlapped: Bool { state.withLock { $0.overlapped } }
        var blocked: Bool { gateOpen.withLock { $0 != nil } }

        func scale(to replicas: Int) async throws {
            state.withLock { s in
                s.calls.append(replicas)
                s.running += 1
                if s.running > 1 { s.overlapped = true }
            }
            if replicas == 1 {
                await withCheckedContinuation { continuation in gateOpen.withLock { $0 = continuation } }
            }
            state.withLock { $0.running -= 1 }
        }

        func release() { gateOpen.withLock { c in c?.resume(); c = nil } }
        func statusUpdates() -> AsyncStream<BackendStatus> { continuation.yield(BackendStatus()); return updates }
        func run() async throws { while !Task.isCancelled { try await Task.sleep(for: .seconds(3600)) } }
    }

    @Test func aScaleDownAfterASlowScaleUpLandsLastAndNeverOverlaps() async throws {
        let backend = SlowBackend()
        let scaler = Scaler(policy: ScalingPolicy(model: "m"), backend: backend, clock: ManualClock(), logger: Logger(label: "test"))
        let run = Task { await scaler.run() }
        defer { run.cancel() }
        let request = Task { try await scaler.admit() }
        try await eventually("scale(1) in flight") { backend.blocked }
        // An operator stops the model while scale(1) is still on its way.
        await scaler.stop(force: true)
        await #expect(throws: AdmissionError.wakeFailed(.stopped)) { try await request.value }
        #expect(backend.calls == [1], "scale(0) must wait for scale(1)")
        backend.release()
        try await eventually("scale(0) after scale(1)") { backend.calls == [1, 0] }
        #expect(!backend.overlapped)
        #expect(scaler.actuator.desired == 0)
    }
}
