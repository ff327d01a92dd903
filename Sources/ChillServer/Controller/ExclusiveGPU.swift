/// Exclusive mode: one model on the GPUs at a time. Pure state and decisions (table-tested); the
/// controller feeds it what it observes and carries out what it answers.
///
/// A model that wants replicas while another holds the GPUs waits: for the holder's minimum
/// residency (so alternating requests cannot thrash), then for its drain (in-flight requests finish,
/// bounded by the drain timeout) and its pods to be gone. An operator's switch (`kubectl chill
/// switch`, `POST /proxy/models/switch`, `kubectl chill start`) skips the residency wait.
struct ExclusiveGPU<Instant: InstantProtocol & Sendable>: Sendable where Instant.Duration == Duration {
    /// The model holding (or entitled to) the GPUs.
    private(set) var active: String?
    private(set) var activeSince: Instant?
    /// A switch under way: the model that gets the GPUs once `active` is drained.
    private(set) var switchingTo: String?
    private(set) var drainDeadline: Instant?

    let minResidency: Duration
    let drainTimeout: Duration

    init(active: String?, since: Instant?, minResidency: Duration, drainTimeout: Duration) {
        self.active = active
        self.activeSince = since
        self.minResidency = minResidency
        self.drainTimeout = drainTimeout
    }

    /// What the controller observed of one model.
    struct Observation: Sendable, Equatable {
        /// The Scaler asks for replicas.
        var wants: Bool
        /// No pods of it exist any more (none live, none terminating).
        var isGone: Bool
        /// It wants replicas but does not serve yet: taking the GPUs now would waste its wake and
        /// fail the requests it holds.
        var isWaking = false
    }

    /// How often a model waiting behind a waking holder looks again.
    static var waitingRetry: Duration { .seconds(1) }

    enum Decision: Sendable, Equatable {
        /// Run with the Scaler's replicas.
        case run
        /// Keep it at zero; look again after the delay (nil: when something changes).
        case wait(retryAfter: Duration?)
        /// It holds the GPUs but must give them up: drain it (force once the deadline passed).
        case drain(force: Bool)
    }

    /// What changed beyond the decision, for the controller to act on.
    enum Change: Sendable, Equatable {
        /// A new model holds the GPUs (write chill-state, reconcile it).
        case activated(String, previous: String?)
        /// A switch began: reconcile the model that must drain.
        case switchStarted(from: String, to: String)
    }

    mutating func decide(_ model: String, _ observed: Observation, others: (String) -> Observation, now: Instant) -> (Decision, [Change]) {
        var changes: [Change] = []
        if active == nil {
            guard observed.wants else { return (.wait(retryAfter: nil), []) }
            activate(model, now: now, changes: &changes)
            return (.run, changes)
        }
        if active == model {
            guard let target = switchingTo, target != model else { return (.run, []) }
            // Giving the GPUs to `target`.
            if observed.isGone {
                activate(target, now: now, changes: &changes)
                return (.wait(retryAfter: nil), changes)
            }
            let deadline = drainDeadline ?? now.advanced(by: drainTimeout)
            drainDeadline = deadline
            let force = now >= deadline
            return (.drain(force: force), [])
        }
        // Someone else holds the GPUs.
        guard observed.wants else { return (.wait(retryAfter: nil), []) }
        let holder = active!
        if let target = switchingTo {
            // A switch is under way (to us or to a third model): wait for it.
            return (.wait(retryAfter: target == model ? nil : minResidency), [])
        }
        let holderState = others(holder)
        if !holderState.wants && holderState.isGone {
            activate(model, now: now, changes: &changes)
            return (.run, changes)
        }
        if let since = activeSince {
            let resident = since.duration(to: now)
            if resident < minResidency { return (.wait(retryAfter: minResidency - resident), []) }
        }
        if holderState.isWaking { return (.wait(retryAfter: Self.waitingRetry), []) }
        beginSwitch(from: holder, to: model, now: now, changes: &changes)
        return (.wait(retryAfter: nil), changes)
    }

    /// An operator asked for `model` to hold the GPUs: no residency wait.
    mutating func requestSwitch(to model: String, holderIsGone: Bool, now: Instant) -> [Change] {
        var changes: [Change] = []
        guard let holder = active, holder != model else {
            switchingTo = nil
            drainDeadline = nil
            if active != model { activate(model, now: now, changes: &changes) }
            return changes
        }
        if holderIsGone {
            activate(model, now: now, changes: &changes)
        } else if switchingTo != model {
            beginSwitch(from: holder, to: model, now: now, changes: &changes)
        }
        return changes
    }

    /// A model left (deleted, no longer selected): it gives up the GPUs.
    mutating func forget(_ model: String) {
        if switchingTo == model {
            switchingTo = nil
            drainDeadline = nil
        }
        if active == model {
            if let target = switchingTo {
                active = target
                switchingTo = nil
                drainDeadline = nil
            } else {
                active = nil
            }
        }
    }

    private mutating func activate(_ model: String, now: Instant, changes: inout [Change]) {
        let previous = active
        active = model
        activeSince = now
        switchingTo = nil
        drainDeadline = nil
        changes.append(.activated(model, previous: previous))
    }

    private mutating func beginSwitch(from holder: String, to model: String, now: Instant, changes: inout [Change]) {
        switchingTo = model
        drainDeadline = now.advanced(by: drainTimeout)
        changes.append(.switchStarted(from: holder, to: model))
    }
}
