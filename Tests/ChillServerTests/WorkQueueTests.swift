import Testing
import TestSupport
@testable import ChillServer

/// The work queue on a manual clock: coalescing, one reconcile of a name at a time, backoff, and the
/// ways a backoff grown during an outage is cut short.
@Suite(.timeLimit(.minutes(1))) struct WorkQueueTests {
    /// Fails `name` (the API server out of reach) until the retry it is given waits `maxDelay` (the clock
    /// moved through every shorter one, each retry taken and failed again). Returns the delays asked
    /// for; the last retry is pending.
    static func backOffToTheMaximum(_ name: String, _ queue: WorkQueue, _ clock: ManualClock,
                                    _ sleeps: inout AsyncStream<Duration>.Iterator) async -> [Duration] {
        var asked: [Duration] = []
        while asked.last != queue.maxDelay {
            await queue.addRateLimited(name, unreachable: true)
            guard let delay = await sleeps.next() else { break }
            asked.append(delay)
            if delay == queue.maxDelay { break }
            clock.advance(by: delay)
            #expect(await queue.next() == name)
            await queue.done(name)
        }
        return asked
    }

    /// A queue on a manual clock with `name` backed off to the maximum (its minute's retry pending), the
    /// clock's sleeps, and the delays asked for on the way.
    static func backedOff(_ name: String) async -> (ManualClock, WorkQueue, AsyncStream<Duration>.Iterator, [Duration]) {
        let clock = ManualClock()
        let queue = WorkQueue(clock: clock)
        var sleeps = clock.sleeps.makeAsyncIterator()
        let asked = await backOffToTheMaximum(name, queue, clock, &sleeps)
        return (clock, queue, sleeps, asked)
    }

    @Test func aNameQueuedManyTimesIsQueuedOnce() async {
        let queue = WorkQueue(clock: ManualClock())
        await queue.add("a")
        await queue.add("b")
        await queue.add("a")
        #expect(await queue.pending == ["a", "b"])
    }

    @Test func aNameQueuedWhileItRunsRunsAgainAfterNotAlongside() async {
        let queue = WorkQueue(clock: ManualClock())
        await queue.add("a")
        #expect(await queue.next() == "a")
        await queue.add("a")
        await queue.add("a")
        #expect(await queue.pending.isEmpty)
        await queue.done("a")
        #expect(await queue.pending == ["a"])
    }

    @Test func failuresBackOffFrom100msDoublingToAMinute() async {
        let clock = ManualClock()
        let queue = WorkQueue(clock: clock)
        var sleeps = clock.sleeps.makeAsyncIterator()
        let asked = await Self.backOffToTheMaximum("a", queue, clock, &sleeps)
        #expect(asked == [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000].map { Duration.milliseconds($0) })
        // And stays there.
        clock.advance(by: .seconds(60))
        #expect(await queue.next() == "a")
        await queue.done("a")
        await queue.addRateLimited("a")
        #expect(await sleeps.next() == .seconds(60))
        // A success starts it over.
        await queue.forget("a")
        await queue.addRateLimited("a")
        #expect(await sleeps.next() == .milliseconds(100))
    }

    /// The API server is back: a name waiting out a minute of backoff is queued now, its backoff
    /// started over, and the retry it waited for is dropped rather than run as well a minute later.
    @Test func retryBackedOffQueuesANameWaitingTheMaximumAtOnce() async {
        let (clock, queue, backedOffSleeps, _) = await Self.backedOff("a")
        var sleeps = backedOffSleeps
        await queue.add("b", after: .seconds(10))  // a look-again, not a backoff
        #expect(await sleeps.next() == .seconds(10))
        let now = clock.now

        #expect(await queue.retryBackedOff() == ["a"])
        #expect(await queue.pending == ["a"])
        #expect(clock.now == now)
        #expect(clock.sleeperCount == 1, "the minute's retry of a is dropped; b's look-again stays")
        #expect(await queue.isDelayed("b"))
        #expect(await queue.failureCount("a") == 0)
        #expect(await queue.next() == "a")
        await queue.done("a")
        await queue.addRateLimited("a")
        #expect(await sleeps.next() == .milliseconds(100))
    }

    @Test func retryBackedOffRunsANameThatIsRunningOnceMoreAfter() async {
        let (_, queue, _, _) = await Self.backedOff("a")
        await queue.add("a")  // taken now, while its retry is pending
        #expect(await queue.next() == "a")
        #expect(await queue.retryBackedOff() == ["a"])
        #expect(await queue.pending.isEmpty, "never two reconciles of a at once")
        await queue.done("a")
        #expect(await queue.pending == ["a"])
    }

    /// A name the server answered with an error (a conflict, a rejected write) is not retried sooner
    /// because the server is back: it was there all along.
    @Test func retryBackedOffLeavesANameTheServerAnsweredAlone() async {
        let (clock, queue, backedOffSleeps, _) = await Self.backedOff("a")
        var sleeps = backedOffSleeps
        await queue.addRateLimited("b")
        #expect(await sleeps.next() == .milliseconds(100))
        #expect(await queue.retryBackedOff() == ["a"])
        #expect(await queue.isDelayed("b"))
        #expect(await queue.failureCount("b") == 1)
        #expect(clock.sleeperCount == 1)
    }

    /// A wake for a model whose reconciles failed: it runs now, and its retries start from 100 ms again.
    @Test func anAddResettingTheBackoffRunsNowAndRetriesSoon() async {
        let (clock, queue, backedOffSleeps, _) = await Self.backedOff("a")
        var sleeps = backedOffSleeps
        await queue.add("a", resettingBackoff: true)
        #expect(await queue.pending == ["a"])
        #expect(clock.sleeperCount == 0)
        #expect(await queue.next() == "a")
        await queue.addRateLimited("a")
        await queue.done("a")
        #expect(await sleeps.next() == .milliseconds(100))
    }

    /// A plain add runs a backed-off name now too, but keeps counting its failures (controller-runtime's
    /// rate limiter: only a success forgets).
    @Test func aPlainAddRunsNowAndKeepsTheBackoff() async {
        let (_, queue, _, asked) = await Self.backedOff("a")
        await queue.add("a")
        #expect(await queue.next() == "a")
        #expect(await queue.failureCount("a") == asked.count)
        await queue.done("a")
    }

    @Test func aPendingDelayIsReplacedOnlyByASoonerOne() async {
        let clock = ManualClock()
        let queue = WorkQueue(clock: clock)
        var sleeps = clock.sleeps.makeAsyncIterator()
        await queue.add("a", after: .seconds(10))
        #expect(await sleeps.next() == .seconds(10))
        await queue.add("a", after: .seconds(1))
        #expect(await sleeps.next() == .seconds(1))
        #expect(clock.sleeperCount == 1)
        await queue.add("a", after: .seconds(20))  // later: ignored, no timer started
        #expect(clock.sleeperCount == 1)
        #expect(clock.sleepsStarted == 2)
        clock.advance(by: .seconds(1))
        #expect(await queue.next() == "a")
        await queue.done("a")
        #expect(!(await queue.isDelayed("a")))
    }

    @Test func closeEndsTheWorkerAndTheTimers() async {
        let clock = ManualClock()
        let queue = WorkQueue(clock: clock)
        var sleeps = clock.sleeps.makeAsyncIterator()
        await queue.add("a", after: .seconds(5))
        _ = await sleeps.next()
        let worker = Task { await queue.next() }
        await queue.close()
        #expect(await worker.value == nil)
        #expect(clock.sleeperCount == 0)
    }
}
