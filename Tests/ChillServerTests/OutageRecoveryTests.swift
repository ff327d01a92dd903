import KubeTestServer
import Logging
import Shared
import Testing
import TestSupport
@testable import ChillServer

/// After an API server outage, reconciles that backed off while it was away run as soon as it answers
/// again, not up to a minute later: the controller's queue and its recovery follower (as
/// `ModelController.run` wires them), a real client, the test API server's outage mode, and a manual
/// clock under the queue that the test never moves past the pending retry, so only the recovery can
/// bring it forward.
@Suite(.serialized, .timeLimit(.minutes(1))) struct OutageRecoveryTests {
    struct Outcome: Equatable, CustomStringConvertible {
        var name: String
        var served: Bool
        var description: String { "\(name) \(served ? "reconciled" : "failed")" }
    }

    final class Rig: Sendable {
        let server: KubeTestServer
        let client: KubeClient
        let clock: ManualClock
        let queue: WorkQueue
        let outcomes: AsyncStream<Outcome>
        private let tasks: [Task<Void, Never>]

        init() async throws {
            let server = try await KubeTestServer.start()
            let client = BackendTestKit.adminClient(server)
            let clock = ManualClock()
            let queue = WorkQueue(clock: clock)
            let (outcomes, record) = AsyncStream<Outcome>.makeStream()
            let api = client.api(ConfigMap.self)
            // Each reconcile reads from the API server, as a real one reads or writes.
            tasks = [
                Task {
                    await queue.process { name in
                        _ = try await api.getIfExists(name)
                        record.yield(Outcome(name: name, served: true))
                        return nil
                    } failed: { name, _ in
                        record.yield(Outcome(name: name, served: false))
                    }
                },
                Task { await queue.followRecoveries(of: client.reachability) },
            ]
            (self.server, self.client, self.clock, self.queue, self.outcomes) = (server, client, clock, queue, outcomes)
        }

        func stop() async {
            await queue.close()
            for task in tasks { task.cancel() }
            Task { [server] in try? await server.shutdown() }
        }

        /// While the server is unreachable: `name` fails, and fails again at each retry, until its next
        /// retry waits the queue's maximum (a minute). Returns the instant that retry is due.
        func backOffToTheMaximum(_ name: String, _ outcomes: inout AsyncStream<Outcome>.Iterator,
                                 _ sleeps: inout AsyncStream<Duration>.Iterator) async throws -> ManualClock.Instant {
            await queue.add(name)
            while true {
                let outcome = await outcomes.next()
                guard outcome == Outcome(name: name, served: false) else {
                    throw Timeout(description: "expected \(name) to fail while the server is unreachable, got \(outcome?.description ?? "the end")")
                }
                guard let delay = await sleeps.next() else { throw Timeout(description: "the clock's sleeps ended") }
                if delay == queue.maxDelay { return clock.now.advanced(by: delay) }
                clock.advance(by: delay)
            }
        }
    }

    /// A wake is the first request after the outage: its answer is the recovery, and the model that
    /// was waiting out a minute of backoff is reconciled right after it.
    @Test func aReconcileBackedOffToTheMaximumRunsOnceARequestIsAnsweredAgain() async throws {
        let rig = try await Rig()
        var outcomes = rig.outcomes.makeAsyncIterator()
        var sleeps = rig.clock.sleeps.makeAsyncIterator()
        await rig.server.setReachable(false)
        let due = try await rig.backOffToTheMaximum("alpha", &outcomes, &sleeps)
        #expect(rig.client.reachability.isFailing)

        await rig.server.setReachable(true)
        await rig.queue.add("beta", resettingBackoff: true)
        #expect(await outcomes.next() == Outcome(name: "beta", served: true))
        #expect(await outcomes.next() == Outcome(name: "alpha", served: true))
        #expect(rig.clock.now < due, "alpha ran before its retry was due")
        #expect(rig.client.reachability.recoveries == 1)
        #expect(await rig.queue.failureCount("alpha") == 0)
        await rig.stop()
    }

    /// Nothing else is asked of the server: a watch reconnecting is the recovery (the informer's
    /// watcher backs off on the real clock, briefly here; the queue's clock stays put).
    @Test func aReconcileBackedOffToTheMaximumRunsOnceAWatchReconnects() async throws {
        let rig = try await Rig()
        var outcomes = rig.outcomes.makeAsyncIterator()
        var sleeps = rig.clock.sleeps.makeAsyncIterator()
        let informer = Informer(
            "configmaps", watcher: rig.client.api(ConfigMap.self).watcher(backoff: Backoff(initial: .milliseconds(20), maximum: .milliseconds(200))),
            logger: Logger(label: "test"))
        let watching = Task { await informer.run() }
        await informer.waitForSync()
        await rig.server.setReachable(false)
        let due = try await rig.backOffToTheMaximum("alpha", &outcomes, &sleeps)

        await rig.server.setReachable(true)
        #expect(await outcomes.next() == Outcome(name: "alpha", served: true))
        #expect(rig.clock.now < due, "alpha ran before its retry was due")
        watching.cancel()
        await rig.stop()
    }

    /// A wake during the outage: the model's retries start from 100 ms again rather than from where its
    /// earlier failures left them, so they notice the server's return within the wake's time.
    @Test func aWakeDuringTheOutageRetriesFromTheShortestDelay() async throws {
        let rig = try await Rig()
        var outcomes = rig.outcomes.makeAsyncIterator()
        var sleeps = rig.clock.sleeps.makeAsyncIterator()
        await rig.server.setReachable(false)
        _ = try await rig.backOffToTheMaximum("alpha", &outcomes, &sleeps)

        await rig.queue.add("alpha", resettingBackoff: true)
        #expect(await outcomes.next() == Outcome(name: "alpha", served: false))
        #expect(await sleeps.next() == .milliseconds(100))
        await rig.server.setReachable(true)
        rig.clock.advance(by: .milliseconds(100))
        #expect(await outcomes.next() == Outcome(name: "alpha", served: true))
        await rig.stop()
    }
}
