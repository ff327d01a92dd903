import ArgumentParser
import Shared
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension KubectlChill {
    struct Wait: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Wake a model and wait until it serves, showing each phase with an ETA.",
            discussion: """
                Requests a wake (annotation chill.dev/requested-state=awake), then follows the model, its pods and their events through watches: Pending → Scheduled → Pulling image → Starting → Loading model → Ready. Once a wake has been recorded, an ETA comes from the last one ("~35s left, last wake took 52s"). On a terminal the progress is one live line; otherwise one line per phase change, stamped with its RFC 3339 time (UTC).

                Elapsed time counts from this request, or from the start of a wake already under way. Exits 0 when the model serves (status.phase Ready, readyReplicas >= 1), 1 when a pod fails (CrashLoopBackOff, ImagePullBackOff, ErrImagePull, …), when chill-server acted on the request and the model is Failed, or when the timeout passes. It refuses at once when chill-server is not running in the namespace (no Deployment, or 0 ready replicas), since nothing would scale the model up. MODEL defaults to the active model.

                Examples:
                  kubectl chill wait
                  kubectl chill wait qwen --timeout 15m
                  kubectl chill start qwen && kubectl chill wait qwen
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The model (VLLMModel name); default: the active model.", completion: .shellCommand(KubectlChill.Completion.modelNamesCommand))
        var model: String?

        @Option(help: "How long to wait, e.g. 90s or 10m.")
        var timeout: String = "10m"

        func validate() throws {
            guard let duration = try? GoDuration.parse(timeout), duration > .zero else {
                throw ValidationError("--timeout \"\(timeout)\" is not a positive duration — use e.g. 90s or 10m")
            }
        }

        func run() async throws {
            let timeout = try GoDuration.parse(timeout)
            try await global.withClient { client in
                var name = model
                if name == nil {
                    name = try await ChillState.read(client).activeModel
                    guard name != nil else {
                        throw CLIError("no model given and no active model", hint: "pass MODEL, or choose one with: kubectl chill switch MODEL")
                    }
                }
                try await WakeWaiter(model: name!, timeout: timeout, client: client).run()
            }
        }
    }
}

/// `wait`'s loop: requests the wake, then derives the state on every watch event until ready, failed or timed out.
struct WakeWaiter {
    let model: String
    let timeout: Duration
    let client: KubeClient

    enum Update: Sendable {
        case model(WatcherEvent<VLLMModel>)
        case pods(WatcherEvent<Pod>)
        case events(WatcherEvent<Event>)
        case modelWatchFailed(any Error)
        case tick
        case timedOut
    }

    func run() async throws {
        let console = Console.current
        let initial = try await ModelLookup.get(model, client)
        if initial.isServing {
            console.out("\"\(model)\" is ready (\(initial.readyReplicas) replica\(initial.readyReplicas == 1 ? "" : "s") serving).")
            return
        }
        try await ProxyCheck.requireRunning(client, model: model, command: "wait \(model)")
        let requestedAt = CLIClock.now
        try await ModelIntent.request(ChillContract.requestedStateAwake, model: model, at: requestedAt, client)
        let record = initial.status?.lastWake
        // A finished wake's length (seconds) feeds the ETA; a record without it is the wake under way.
        let lastWake = record?.seconds
        // Elapsed time counts from the wake under way (Waking, its record not finished), else from this
        // request: never from an earlier wake.
        let finished = record?.seconds != nil || record?.ready != nil
        let underWayStart = initial.phase == .waking && !finished ? record?.started.flatMap(RFC3339.parse) : nil
        let wakeStart = underWayStart.map { min($0, requestedAt) } ?? requestedAt
        if initial.status?.phase == .failed {
            console.out("\"\(model)\" is Failed (\(initial.status?.message ?? "no message")); asked chill-server to try again.")
        }
        console.out("Waking \"\(model)\"" + (lastWake.map { " (last wake took \(wakeDuration(seconds: $0)))" } ?? "") + "…")
        let requestStamp = RFC3339.parse(RFC3339.format(requestedAt)) ?? requestedAt

        let (updates, continuation) = AsyncStream<Update>.makeStream()
        let models = client.api(VLLMModel.self)
        let pods = client.api(Pod.self)
        let events = client.api(Event.self)
        let model = self.model
        let timeout = self.timeout
        let live = console.isTerminal

        let outcome: WakeState = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for try await event in models.watcher(ListOptions(fieldSelector: "metadata.name=\(model)")) { continuation.yield(.model(event)) }
                } catch { continuation.yield(.modelWatchFailed(error)) }
            }
            group.addTask {
                // Pods and events only explain the wake: if they cannot be watched, the model's status still decides.
                for try await event in pods.watcher(ListOptions(labelSelector: "\(ChillContract.modelLabel)=\(model)")) { continuation.yield(.pods(event)) }
            }
            group.addTask {
                for try await event in events.watcher() { continuation.yield(.events(event)) }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                continuation.yield(.timedOut)
            }
            if live {
                group.addTask {
                    while true {
                        try await Task.sleep(for: .seconds(1))
                        continuation.yield(.tick)
                    }
                }
            }
            defer { group.cancelAll() }

            var current: VLLMModel? = initial
            var podsByName: [String: Pod] = [:]
            var eventsByKey: [String: Event] = [:]
            var modelListed = false, podsListed = false
            var failureCounts = initial.phase != .failed
            var shown: String? = nil
            var lastState: WakeState = .progress(.pending, detail: nil)

            func show(_ state: WakeState, force: Bool = false) {
                let now = CLIClock.now
                let elapsed = max(0, now.timeIntervalSince(wakeStart))
                let text = "\(model): " + WakeProgress.line(state, elapsed: elapsed, lastWake: lastWake)
                if live {
                    console.progress(text)
                } else {
                    // One line per change of phase or detail; the timing alone is not a change.
                    let key = "\(state)"
                    guard force || key != shown else { return }
                    shown = key
                    console.out("\(Self.clockTime(now))  \(text)")
                }
            }

            for await update in updates {
                switch update {
                case .model(let event):
                    switch event {
                    case .listed(let items): current = items.first { $0.name == model }; modelListed = true
                    case .added(let m), .modified(let m): current = m
                    case .deleted: current = nil
                    }
                    if let phase = current?.phase, phase != .failed { failureCounts = true }
                    // chill-server acted on this request and the model is (still) Failed: that is the answer.
                    if let handled = current?.status?.handledRequestAt.flatMap(RFC3339.parse), handled >= requestStamp { failureCounts = true }
                case .pods(let event):
                    switch event {
                    case .listed(let items):
                        podsByName = Dictionary(items.map { ($0.metadata.name ?? "", $0) }, uniquingKeysWith: { _, b in b })
                        podsListed = true
                    case .added(let p), .modified(let p): podsByName[p.metadata.name ?? ""] = p
                    case .deleted(let p): podsByName[p.metadata.name ?? ""] = nil
                    }
                case .events(let event):
                    func key(_ e: Event) -> String { e.metadata.uid ?? e.metadata.name ?? "" }
                    switch event {
                    case .listed(let items): eventsByKey = Dictionary(items.map { (key($0), $0) }, uniquingKeysWith: { _, b in b })
                    case .added(let e), .modified(let e): eventsByKey[key(e)] = e
                    case .deleted(let e): eventsByKey[key(e)] = nil
                    }
                case .modelWatchFailed(let error):
                    throw error
                case .tick:
                    if modelListed && podsListed { show(lastState) }
                    continue
                case .timedOut:
                    if live { console.out("") }
                    let phase = lastState.phase?.label ?? "unknown"
                    throw CLIError(
                        "\"\(model)\" is not ready after \(GoDuration.formatCompact(timeout)) (last phase: \(phase))",
                        hint: "it may still be waking: kubectl chill wait \(model), or see: kubectl get pods -n \(client.namespace) -l \(ChillContract.modelLabel)=\(model)")
                }
                guard modelListed && podsListed else { continue }
                let state = WakeProgress.derive(
                    modelName: model, model: current, pods: Array(podsByName.values), events: Array(eventsByKey.values),
                    modelFailureCounts: failureCounts)
                lastState = state
                switch state {
                case .progress: show(state)
                case .ready, .failed:
                    show(state, force: true)
                    if live { console.out("") }
                    return state
                }
            }
            throw CancellationError()
        }
        if case .failed(let cause, let pod) = outcome {
            throw CLIError(
                "wake of \"\(model)\" failed: \(cause)",
                hint: WakeProgress.hint(cause: cause, pod: pod, namespace: client.namespace, model: model))
        }
    }

    /// `2030-01-01T12:03:04Z`: an instant, RFC 3339 (UTC) like every other one chill prints.
    static func clockTime(_ date: Date) -> String { RFC3339.format(date) }
}
