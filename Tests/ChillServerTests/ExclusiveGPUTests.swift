import Testing
import TestSupport
@testable import ChillServer

/// Exclusive mode's decisions, table-driven on a manual clock: who gets the GPUs, when a switch
/// starts, and why alternating requests cannot thrash.
@Suite struct ExclusiveGPUTests {
    typealias GPU = ExclusiveGPU<ManualClock.Instant>
    typealias Obs = GPU.Observation
    static let t0 = ManualClock.Instant(offset: .zero)
    static func at(_ seconds: Int) -> ManualClock.Instant { t0.advanced(by: .seconds(seconds)) }
    static let wanting = Obs(wants: true, isGone: false)
    static let idle = Obs(wants: false, isGone: true)
    static let serving = Obs(wants: true, isGone: false)
    static let drained = Obs(wants: false, isGone: true)

    struct Row: Sendable, CustomStringConvertible {
        var name: String
        var active: String?
        var since: Int
        var model: String
        var observed: Obs
        var holder: Obs
        var now: Int
        var decision: GPU.Decision
        var changes: [GPU.Change]
        var description: String { name }
    }

    static let rows: [Row] = [
        Row(name: "nobody active, a model wants: it gets the GPUs", active: nil, since: 0, model: "a", observed: wanting, holder: idle, now: 0,
            decision: .run, changes: [.activated("a", previous: nil)]),
        Row(name: "nobody active, nobody wants: nothing happens", active: nil, since: 0, model: "a", observed: idle, holder: idle, now: 0,
            decision: .wait(retryAfter: nil), changes: []),
        Row(name: "the active model runs", active: "a", since: 0, model: "a", observed: wanting, holder: wanting, now: 5,
            decision: .run, changes: []),
        Row(name: "holder idle and gone: the other takes over at once", active: "a", since: 0, model: "b", observed: wanting, holder: drained, now: 1,
            decision: .run, changes: [.activated("b", previous: "a")]),
        Row(name: "holder busy within min residency: wait for the rest of it", active: "a", since: 0, model: "b", observed: wanting, holder: serving, now: 10,
            decision: .wait(retryAfter: .seconds(20)), changes: []),
        Row(name: "holder busy past min residency: a switch starts", active: "a", since: 0, model: "b", observed: wanting, holder: serving, now: 31,
            decision: .wait(retryAfter: nil), changes: [.switchStarted(from: "a", to: "b")]),
        Row(name: "holder still waking past min residency: wait, do not waste its wake", active: "a", since: 0, model: "b", observed: wanting,
            holder: Obs(wants: true, isGone: false, isWaking: true), now: 31, decision: .wait(retryAfter: .seconds(1)), changes: []),
        Row(name: "a model that does not want replicas never takes the GPUs", active: "a", since: 0, model: "b", observed: idle, holder: serving, now: 100,
            decision: .wait(retryAfter: nil), changes: []),
    ]

    @Test(arguments: rows)
    func decide(_ row: Row) {
        var gpu = GPU(active: row.active, since: Self.at(row.since), minResidency: .seconds(30), drainTimeout: .seconds(120))
        let (decision, changes) = gpu.decide(row.model, row.observed, others: { _ in row.holder }, now: Self.at(row.now))
        #expect(decision == row.decision)
        #expect(changes == row.changes)
    }

    @Test func aSwitchDrainsTheHolderThenForcesItAtTheDeadlineThenHandsOver() {
        var gpu = GPU(active: "a", since: Self.at(0), minResidency: .seconds(30), drainTimeout: .seconds(120))
        _ = gpu.decide("b", Self.wanting, others: { _ in Self.serving }, now: Self.at(40))
        #expect(gpu.switchingTo == "b")
        // The holder drains gracefully…
        #expect(gpu.decide("a", Self.serving, others: { _ in Self.wanting }, now: Self.at(41)).0 == .drain(force: false))
        // …and is forced once the drain timeout passes.
        #expect(gpu.decide("a", Self.serving, others: { _ in Self.wanting }, now: Self.at(161)).0 == .drain(force: true))
        // The newcomer keeps waiting meanwhile, without starting another switch.
        #expect(gpu.decide("b", Self.wanting, others: { _ in Self.serving }, now: Self.at(100)) == (.wait(retryAfter: nil), []))
        // Its pods gone, the holder hands over.
        let (decision, changes) = gpu.decide("a", Self.drained, others: { _ in Self.wanting }, now: Self.at(170))
        #expect(decision == .wait(retryAfter: nil))
        #expect(changes == [.activated("b", previous: "a")])
        #expect(gpu.decide("b", Self.wanting, others: { _ in Self.drained }, now: Self.at(170)).0 == .run)
    }

    @Test func alternatingRequestsCannotThrash() {
        var gpu = GPU(active: nil, since: nil, minResidency: .seconds(30), drainTimeout: .seconds(5))
        var activations = 0
        // Requests for a and b alternate every second for 60 s; each switch completes at once.
        for second in 0..<60 {
            let model = second.isMultiple(of: 2) ? "a" : "b"
            let other = model == "a" ? "b" : "a"
            let (_, changes) = gpu.decide(model, Self.wanting, others: { _ in Self.serving }, now: Self.at(second))
            for change in changes {
                if case .activated = change { activations += 1 }
                if case .switchStarted = change {
                    let (_, handover) = gpu.decide(other, Self.drained, others: { _ in Self.wanting }, now: Self.at(second))
                    activations += handover.count
                }
            }
        }
        // At most one switch per min residency: the first activation plus one per 30 s.
        #expect(activations <= 3, "\(activations) activations in 60 s")
    }

    @Test func anOperatorSwitchSkipsTheResidency() {
        var gpu = GPU(active: "a", since: Self.at(0), minResidency: .seconds(30), drainTimeout: .seconds(120))
        #expect(gpu.requestSwitch(to: "b", holderIsGone: false, now: Self.at(1)) == [.switchStarted(from: "a", to: "b")])
        var idleGPU = GPU(active: "a", since: Self.at(0), minResidency: .seconds(30), drainTimeout: .seconds(120))
        #expect(idleGPU.requestSwitch(to: "b", holderIsGone: true, now: Self.at(1)) == [.activated("b", previous: "a")])
    }

    @Test func aDeletedHolderGivesUpTheGPUs() {
        var gpu = GPU(active: "a", since: Self.at(0), minResidency: .seconds(30), drainTimeout: .seconds(120))
        gpu.forget("a")
        #expect(gpu.active == nil)
        #expect(gpu.decide("b", Self.wanting, others: { _ in Self.idle }, now: Self.at(1)).0 == .run)
    }
}
