import Logging
import Testing
import TestSupport
@testable import ChillServer

/// The Scaler against a fake backend and a manual clock: every timing rule, deterministically.
@Suite(.timeLimit(.minutes(1))) struct ScalerTests {
    struct Harness {
        let clock = ManualClock()
        let backend: FakeBackend
        let scaler: Scaler<ManualClock>
        let run: Task<Void, Never>

        init(policy: ScalingPolicy = ScalingPolicy(model: "m", idleTimeout: .seconds(300), wakeTimeout: .seconds(600)), initial: BackendStatus = FakeBackend.idle) {
            backend = FakeBackend(initial: initial)
            scaler = Scaler(policy: policy, backend: backend, clock: clock, logger: Logger(label: "test"))
            let scaler = self.scaler
            run = Task { await scaler.run() }
        }

        func phase() async -> ModelPhase { await scaler.phase }

        func waitFor(_ phase: ModelPhase) async throws {
            try await eventually("phase \(phase)") { await scaler.phase == phase }
        }

        func waitForScaleCalls(_ calls: [Int]) async throws {
            try await eventually("scale calls \(calls)") { backend.scaleCalls == calls }
        }

        /// Wakes the model the way a first request would, and lets it become ready.
        func makeReady() async throws {
            let scaler = self.scaler
            let admitted = Task { try await scaler.admit() }
            try await waitForScaleCalls([1])
            backend.send(FakeBackend.serving)
            try await admitted.value
            scaler.exit()
        }

        func stop() { run.cancel() }
    }

    @Test func concurrentColdRequestsCauseExactlyOneScaleUp() async throws {
        let h = Harness()
        defer { h.stop() }
        try await h.waitFor(.scaledDown)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<100 { group.addTask { try await h.scaler.admit() } }
            try await eventually("100 held") { await h.scaler.snapshot().held == 100 }
            #expect(await h.phase() == .waking)
            h.backend.send(FakeBackend.starting)
            h.backend.send(FakeBackend.serving)
            try await group.waitForAll()
        }
        #expect(h.backend.scaleCalls == [1])
        #expect(h.scaler.gate.snapshot.inFlight == 100)
        #expect(await h.phase() == .ready)
        for _ in 0..<100 { h.scaler.exit() }
        #expect(await h.scaler.snapshot().stats.wakes == 1)
    }

    @Test func idleTimerRunsFromTheEndOfTheLastRequestAndNeverCutsAStream() async throws {
        let h = Harness()
        defer { h.stop() }
        try await h.makeReady()
        // A long generation: 3× the idle timeout in flight, and nothing scales down.
        #expect(h.scaler.enterIfReady())
        try await h.clock.waitForSleepers(1)
        h.clock.advance(by: .seconds(900))
        try await eventually("idle loop parked") { h.clock.sleeperCount == 0 }
        #expect(h.backend.scaleCalls == [1])
        #expect(await h.phase() == .ready)
        // It ends; the timer starts from now.
        h.scaler.exit()
        try await h.clock.waitForSleepers(1)
        h.clock.advance(by: .seconds(299))
        try await h.clock.waitForSleepers(1)
        #expect(h.backend.scaleCalls == [1])
        h.clock.advance(by: .seconds(1))
        try await h.waitForScaleCalls([1, 0])
        #expect(await h.phase() == .draining)
        h.backend.send(FakeBackend.idle)
        try await h.waitFor(.scaledDown)
    }

    @Test func aRequestDuringScaleDownWakesTheModelAgainAndIsServed() async throws {
        let h = Harness()
        defer { h.stop() }
        try await h.makeReady()
        try await h.clock.waitForSleepers(1)
        h.clock.advance(by: .seconds(300))
        try await h.waitForScaleCalls([1, 0])
        #expect(await h.phase() == .draining)
        let scaler = h.scaler
        let request = Task { try await scaler.admit() }
        try await h.waitForScaleCalls([1, 0, 1])
        h.backend.send(FakeBackend.serving)
        try await request.value
        #expect(await h.phase() == .ready)
        scaler.exit()
    }

    @Test func wakeTimeoutFailsHeldRequestsWithTheCause() async throws {
        let h = Harness(policy: ScalingPolicy(model: "m", wakeTimeout: .seconds(600)))
        defer { h.stop() }
        let scaler = h.scaler
        let request = Task { try await scaler.admit() }
        try await h.waitForScaleCalls([1])
        h.backend.send(FakeBackend.starting)
        try await h.clock.waitForSleepers(1)  // the wake timer
        h.clock.advance(by: .seconds(600))
        await #expect(throws: AdmissionError.wakeFailed(.timedOut(after: .seconds(600)))) { try await request.value }
        try await h.waitForScaleCalls([1, 0])
        #expect(await h.phase() == .failed)
    }

    @Test func crashLoopFailsFastAndTheCooldownAnswersAtOnce() async throws {
        let h = Harness(policy: ScalingPolicy(model: "m", failureCooldown: .seconds(10)))
        defer { h.stop() }
        let scaler = h.scaler
        let request = Task { try await scaler.admit() }
        try await h.waitForScaleCalls([1])
        let crash = BackendFailure(reason: "CrashLoopBackOff", message: "back-off 10s restarting failed container vllm")
        h.backend.send(BackendStatus(desiredReplicas: 1, pendingReplicas: 1, failure: crash))
        await #expect(throws: AdmissionError.wakeFailed(.backend(crash))) { try await request.value }
        // Within the cooldown: the same answer, no new scale-up.
        await #expect(throws: AdmissionError.wakeFailed(.backend(crash))) { try await scaler.admit() }
        try await h.waitForScaleCalls([1, 0])
        // After it: a fresh attempt.
        h.clock.advance(by: .seconds(11))
        let retry = Task { try await scaler.admit() }
        try await h.waitForScaleCalls([1, 0, 1])
        h.backend.send(FakeBackend.serving)
        try await retry.value
    }

    @Test func heldRequestsAreBoundedAndADisconnectedClientIsDropped() async throws {
        let h = Harness(policy: ScalingPolicy(model: "m", maxHeld: 2))
        defer { h.stop() }
        let scaler = h.scaler
        let first = Task { try await scaler.admit() }
        let second = Task { try await scaler.admit() }
        try await eventually("2 held") { await scaler.snapshot().held == 2 }
        await #expect(throws: AdmissionError.tooManyHeld(limit: 2)) { try await scaler.admit() }
        first.cancel()
        await #expect(throws: CancellationError.self) { try await first.value }
        try await eventually("1 held") { await scaler.snapshot().held == 1 }
        h.backend.send(FakeBackend.serving)
        try await second.value
        #expect(h.scaler.gate.snapshot.inFlight == 1)
    }

    @Test func noIdleScaleDownWhileWakingOrWhilePodsArePending() async throws {
        let h = Harness()
        defer { h.stop() }
        let scaler = h.scaler
        let request = Task { try await scaler.admit() }
        try await h.waitForScaleCalls([1])
        h.backend.send(BackendStatus(desiredReplicas: 1, pendingReplicas: 1, notice: "Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu."))
        h.clock.advance(by: .seconds(599))
        #expect(await h.phase() == .waking)
        #expect(h.backend.scaleCalls == [1])
        // Ready with a second replica still pending: the idle timer waits for it.
        h.backend.send(BackendStatus(desiredReplicas: 2, readyReplicas: 1, pendingReplicas: 1))
        try await request.value
        scaler.exit()
        h.clock.advance(by: .seconds(1000))
        try await eventually("idle loop parked") { await scaler.snapshot().phase == .ready }
        #expect(h.backend.scaleCalls == [1])
        h.backend.send(BackendStatus(desiredReplicas: 2, readyReplicas: 2))
        try await h.waitForScaleCalls([1, 0])
    }

    @Test func stopWaitsForInFlightRequestsUnlessForced() async throws {
        let h = Harness()
        defer { h.stop() }
        try await h.makeReady()
        #expect(h.scaler.enterIfReady())
        await h.scaler.stop(force: false)
        #expect(h.backend.scaleCalls == [1])
        h.scaler.exit()
        try await h.waitForScaleCalls([1, 0])
        h.backend.send(FakeBackend.idle)
        try await h.waitFor(.scaledDown)
        await h.scaler.start()
        try await h.waitForScaleCalls([1, 0, 1])
        h.backend.send(FakeBackend.serving)
        try await h.waitFor(.ready)
        #expect(h.scaler.enterIfReady())
        await h.scaler.stop(force: true)
        try await h.waitForScaleCalls([1, 0, 1, 0])
        h.scaler.exit()
    }

    @Test func aPendingStopIsCarriedOutWhileTheIdleLoopAlsoWaitsForTheLastRequest() async throws {
        let h = Harness()
        defer { h.stop() }
        try await h.makeReady()
        try await h.clock.waitForSleepers(2)  // the idle loop (on its deadline) and the spent wake timer
        #expect(h.scaler.enterIfReady())
        // Past the idle deadline with a request in flight: the idle loop now waits for the end of
        // the last request too. The stop must not depend on which of them hears it.
        h.clock.advance(by: .seconds(300))
        try await eventually("idle loop parked") { h.clock.sleeperCount == 1 }
        await h.scaler.stop(force: false)
        #expect(h.backend.scaleCalls == [1])
        h.scaler.exit()
        try await h.waitForScaleCalls([1, 0])
        #expect(await h.phase() == .draining)
    }

    @Test func adoptsAModelThatIsAlreadyServingAtStartup() async throws {
        let h = Harness(initial: FakeBackend.serving)
        defer { h.stop() }
        try await h.waitFor(.ready)
        #expect(h.scaler.enterIfReady())
        h.scaler.exit()
        #expect(h.backend.scaleCalls == [])
    }
}
