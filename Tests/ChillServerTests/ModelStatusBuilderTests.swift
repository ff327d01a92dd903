import Foundation
import Shared
import Testing
@testable import ChillServer

/// What chill-server writes into a VLLMModel's status, for each situation.
@Suite struct ModelStatusBuilderTests {
    static func input(_ phase: ModelPhase, ready: Int = 0, failure: BackendFailure? = nil, lastFailure: String? = nil,
                      previous: VLLMModelStatus? = nil, applyProblem: BackendFailure? = nil) -> ModelStatusBuilder.Input {
        var backend = BackendStatus(desiredReplicas: 1, readyReplicas: ready)
        backend.failure = failure
        var stats = WakeStats()
        stats.scaledDownSeconds = 123.45
        stats.lastWakeSeconds = 42
        let snapshot = ScalerSnapshot(
            phase: phase, inFlight: 0, held: 0, idleSeconds: 0, phaseSeconds: 0, uptimeSeconds: 0, stats: stats, backend: backend,
            lastFailure: lastFailure, lastWakeReadySecondsAgo: 10, lastActivitySecondsAgo: 5)
        return .init(snapshot: snapshot, generation: 3, deploymentReplicas: 1, previous: previous, now: 1_800_000_000,
                     scaledDownLast24h: 60, handledRequestAt: nil, waitingFor: nil, applyProblem: applyProblem)
    }

    static func condition(_ status: VLLMModelStatus, _ type: String) -> Condition? { status.condition(type) }

    @Test(arguments: [
        (ModelPhase.ready, 1, nil as BackendFailure?, VLLMModel.Phase.ready, "Ready", "Serving"),
        (.ready, 0, nil, .waking, "Waking", "Waking"),  // Ready only with a ready replica
        (.waking, 0, nil, .waking, "Waking", "Waking"),
        (.failed, 0, BackendFailure(reason: "CrashLoopBackOff", message: "back-off"), .failed, "Failed", "CrashLoopBackOff"),
        (.failed, 0, BackendFailure(reason: "ErrImagePull", message: "not found"), .failed, "Failed", "ImagePullBackOff"),
        (.scaledDown, 0, nil, .scaledDown, "", ""),
    ])
    func phaseAndConditions(_ phase: ModelPhase, _ ready: Int, _ failure: BackendFailure?, _ expected: VLLMModel.Phase, _ trueCondition: String, _ reason: String) {
        let status = ModelStatusBuilder.status(Self.input(phase, ready: ready, failure: failure))
        #expect(status.phase == expected)
        for type in ["Ready", "Waking", "Failed"] {
            let c = Self.condition(status, type)
            #expect(c?.status == (type == trueCondition ? "True" : "False"), "\(type)")
            if type == trueCondition { #expect(c?.reason == reason) }
            #expect(c?.observedGeneration == 3)
        }
        #expect(status.observedGeneration == 3)
        #expect(status.scaledDownSeconds == 123.5)
        #expect(status.scaledDownSecondsLast24h == 60)
        #expect(status.lastWake?.seconds == 42)
        #expect(status.lastWake?.ready == RFC3339.format(Date(timeIntervalSince1970: 1_800_000_000 - 10)))
    }

    @Test func aWakeTimeoutIsNamed() {
        let status = ModelStatusBuilder.status(Self.input(.failed, lastFailure: "the model did not become ready within the wake timeout (600s)"))
        #expect(Self.condition(status, "Failed")?.reason == "WakeTimeout")
    }

    @Test func aSpecConflictIsAFailedConditionEvenWhileServing() {
        let conflict = BackendFailure(reason: "SpecConflict", message: "another field manager owns fields")
        let status = ModelStatusBuilder.status(Self.input(.ready, ready: 1, applyProblem: conflict))
        #expect(status.phase == .ready)
        #expect(Self.condition(status, "Failed")?.status == "True")
        #expect(Self.condition(status, "Failed")?.reason == "SpecConflict")
        #expect(status.message?.contains("SpecConflict") == true)
    }

    @Test func transitionTimesStayWhileAConditionDoesNotChange() {
        let first = ModelStatusBuilder.status(Self.input(.ready, ready: 1))
        var earlier = first
        earlier.conditions = first.conditions?.map { var c = $0; c.lastTransitionTime = "2020-01-01T00:00:00Z"; return c }
        let second = ModelStatusBuilder.status(Self.input(.ready, ready: 1, previous: earlier))
        #expect(Self.condition(second, "Ready")?.lastTransitionTime == "2020-01-01T00:00:00Z")
        let waking = ModelStatusBuilder.status(Self.input(.waking, previous: earlier))
        #expect(Self.condition(waking, "Ready")?.lastTransitionTime != "2020-01-01T00:00:00Z")
    }
}
