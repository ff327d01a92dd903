import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The simulated engine: scheduler slots (--max-num-seqs), the waiting queue, sleep state,
/// liveness and the counters behind /metrics. Shared by all event loops, guarded by one mutex.
final class Engine: Sendable {
    enum SleepState: Sendable, Equatable {
        case awake
        /// Level 1 ("weights_offloaded") or level 2 ("discard_all").
        case asleep(level: Int)
        /// POST /wake_up is in progress; still counts as sleeping.
        case waking(level: Int)
    }

    enum Admission {
        case running
        case waiting(id: UInt64, EventLoopFuture<Void>)
    }

    private struct Waiter {
        let id: UInt64
        let promise: EventLoopPromise<Void>
    }

    private struct State {
        var running = 0
        var waiters: [Waiter] = []
        var waiterHead = 0
        var nextWaiterID: UInt64 = 1
        var sleep: SleepState = .awake
        var dead = false
        var successLength: UInt64 = 0
        var successStop: UInt64 = 0
        var promptTokens: UInt64 = 0
        var generationTokens: UInt64 = 0
        var cancelled: UInt64 = 0
        var completionRequests: UInt64 = 0
        var failed: UInt64 = 0

        var waitingCount: Int { waiters.count - waiterHead }

        mutating func popWaiter() -> Waiter? {
            guard waiterHead < waiters.count else { return nil }
            let w = waiters[waiterHead]
            waiterHead += 1
            if waiterHead == waiters.count {
                waiters.removeAll(keepingCapacity: true)
                waiterHead = 0
            } else if waiterHead > 1024, waiterHead * 2 > waiters.count {
                waiters.removeFirst(waiterHead)
                waiterHead = 0
            }
            return w
        }
    }

    let config: SimConfig
    /// `--timing-log`, when given.
    let timingLog: TimingLog?
    private let state = Mutex(State())
    private let idPrefix: String
    private let idCounter = Atomic<UInt64>(0)

    init(config: SimConfig, timingLog: TimingLog? = nil) {
        self.config = config
        self.timingLog = timingLog
        // 12 random hex digits per process, then a 16-digit counter: unique across restarts.
        let seed = UInt64.random(in: 0...UInt64.max) >> 16 | 1 << 47
        self.idPrefix = String(seed, radix: 16)
    }

    /// A unique, vLLM-looking request id such as "chatcmpl-3fa9c0...".
    func makeRequestID(prefix: String) -> String {
        let n = idCounter.add(1, ordering: .relaxed).newValue
        let counter = String(n, radix: 16)
        return prefix + idPrefix + String(repeating: "0", count: max(0, 16 - counter.count)) + counter
    }

    // MARK: scheduling

    /// Takes a scheduler slot now, or queues the request until one frees up.
    func admit(on eventLoop: EventLoop) -> Admission {
        state.withLock { s -> Admission in
            if s.running < config.maxNumSeqs && s.waitingCount == 0 {
                s.running += 1
                return .running
            }
            let id = s.nextWaiterID
            s.nextWaiterID += 1
            let promise = eventLoop.makePromise(of: Void.self)
            s.waiters.append(Waiter(id: id, promise: promise))
            return .waiting(id: id, promise.futureResult)
        }
    }

    /// Removes a queued request (its client went away). False when it already got a slot, in
    /// which case the caller owns that slot and must `finish` it.
    func cancelWaiting(id: UInt64) -> Bool {
        let removed = state.withLock { s -> Waiter? in
            guard let idx = s.waiters[s.waiterHead...].firstIndex(where: { $0.id == id }) else {
                return nil
            }
            s.cancelled += 1
            return s.waiters.remove(at: idx)
        }
        guard let removed else { return false }
        removed.promise.fail(CancellationError())
        return true
    }

    enum Outcome {
        case length, stop, cancelled, failed
    }

    /// Frees a slot (handing it straight to the next queued request) and counts the outcome.
    func finish(_ outcome: Outcome, promptTokens: Int, generatedTokens: Int) {
        let next = state.withLock { s -> Waiter? in
            switch outcome {
            case .length: s.successLength += 1
            case .stop: s.successStop += 1
            case .cancelled: s.cancelled += 1
            case .failed: s.failed += 1
            }
            s.promptTokens &+= UInt64(max(0, promptTokens))
            s.generationTokens &+= UInt64(max(0, generatedTokens))
            if let w = s.popWaiter() {
                return w  // the slot moves to the waiter: running stays the same
            }
            s.running -= 1
            return nil
        }
        next?.promise.succeed(())
    }

    func countCompletionRequest() {
        state.withLock { $0.completionRequests += 1 }
    }

    // MARK: liveness and sleep

    var isDead: Bool { state.withLock { $0.dead } }

    func markDead() { state.withLock { $0.dead = true } }

    var sleepState: SleepState { state.withLock { $0.sleep } }

    var isSleeping: Bool { sleepState != .awake }

    /// Starts sleeping at `level`; completions fail from now on. Returns false if already asleep
    /// at a level at least as deep.
    func beginSleep(level: Int) {
        state.withLock { s in
            switch s.sleep {
            case .awake: s.sleep = .asleep(level: level)
            case .asleep(let l), .waking(let l): s.sleep = .asleep(level: max(l, level))
            }
        }
    }

    /// Returns false when the engine is awake already.
    func beginWake() -> Bool {
        state.withLock { s -> Bool in
            switch s.sleep {
            case .awake: return false
            case .asleep(let l), .waking(let l):
                s.sleep = .waking(level: l)
                return true
            }
        }
    }

    func finishWake() {
        state.withLock { s in
            if case .waking = s.sleep { s.sleep = .awake }
        }
    }

    // MARK: metrics

    func prometheusText() -> String {
        let s = state.withLock { $0 }
        let model = "model_name=" + prometheusLabel(config.servedModelName)
        let labels = "engine=\"0\"," + model
        var out = ""
        out.reserveCapacity(3000)
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(String, Double)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (l, v) in samples {
                out += "\(name){\(l)} \(formatMetric(v))\n"
            }
        }
        metric(
            "vllm:num_requests_running", "gauge", "Number of requests in model execution batches.",
            [(labels, Double(s.running))])
        metric(
            "vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.",
            [(labels, Double(s.waitingCount))])
        let kv = s.sleep == .awake ? min(1, Double(s.running) / Double(config.maxNumSeqs)) : 0
        metric(
            "vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.",
            [(labels, kv)])
        var awake = 1.0
        var offloaded = 0.0
        var discarded = 0.0
        switch s.sleep {
        case .awake: break
        case .asleep(let l), .waking(let l):
            awake = 0
            if l >= 2 { discarded = 1 } else { offloaded = 1 }
        }
        metric(
            "vllm:engine_sleep_state", "gauge",
            "Engine sleep state; awake = 0 means engine is sleeping; awake = 1 means engine is awake; "
                + "weights_offloaded = 1 means sleep level 1; discard_all = 1 means sleep level 2.",
            [
                (labels + ",sleep_state=\"awake\"", awake),
                (labels + ",sleep_state=\"weights_offloaded\"", offloaded),
                (labels + ",sleep_state=\"discard_all\"", discarded),
            ])
        metric(
            "vllm:request_success_total", "counter", "Count of successfully processed requests.",
            [
                (labels + ",finished_reason=\"stop\"", Double(s.successStop)),
                (labels + ",finished_reason=\"length\"", Double(s.successLength)),
                (labels + ",finished_reason=\"abort\"", Double(s.cancelled)),
            ])
        metric(
            "vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.",
            [(labels, Double(s.promptTokens))])
        metric(
            "vllm:generation_tokens_total", "counter", "Number of generation tokens processed.",
            [(labels, Double(s.generationTokens))])
        metric(
            "vllm_sim:cancelled_requests_total", "counter",
            "Requests whose client disconnected before the response was complete (running or waiting).",
            [(model, Double(s.cancelled))])
        metric(
            "vllm_sim:completion_requests_total", "counter",
            "Requests received on /v1/completions and /v1/chat/completions, including rejected ones.",
            [(model, Double(s.completionRequests))])
        metric(
            "vllm_sim:failed_requests_total", "counter",
            "Requests cut off by a simulated engine failure (--fail-mid-stream).",
            [(model, Double(s.failed))])
        metric(
            "vllm_sim:engine_dead", "gauge", "1 once the simulated engine has failed.",
            [(model, s.dead ? 1 : 0)])
        return out
    }
}

private func prometheusLabel(_ s: String) -> String {
    var out = "\""
    for c in s.unicodeScalars {
        switch c {
        case "\\": out += "\\\\"
        case "\"": out += "\\\""
        case "\n": out += "\\n"
        default: out.unicodeScalars.append(c)
        }
    }
    return out + "\""
}

private func formatMetric(_ v: Double) -> String {
    if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) + ".0" }
    return String(v)
}

/// Writes one line to standard output at once (unbuffered, so a parent reading a pipe or a file
/// sees it immediately).
func logLine(_ line: String) {
    var text = line
    text.append("\n")
    text.withUTF8 { buf in
        var offset = 0
        while offset < buf.count {
            let n = write(1, buf.baseAddress! + offset, buf.count - offset)
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                return
            }
            offset += n
        }
    }
}

/// Seconds since the Unix epoch.
func unixTime() -> Int {
    Int(time(nil))
}
