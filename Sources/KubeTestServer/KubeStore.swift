import Foundation
import Shared

/// What happened to an object, as seen by watches and controllers.
public enum WatchEventType: String, Sendable {
    case added = "ADDED", modified = "MODIFIED", deleted = "DELETED"
}

/// One committed change (kept in the bounded history that watches and consistent lists replay).
public struct KubeChange: Sendable {
    public var type: WatchEventType
    public var resource: ResourceType
    public var object: JSONValue
    /// The object before the change (nil for ADDED).
    public var previous: JSONValue?
    public var resourceVersion: Int
}

/// A controller run after every committed write (and on clock ticks), inside the store's isolation.
public protocol KubeTestController: Sendable {
    func reconcile(_ change: KubeChange, store: isolated KubeStore)
    func tick(store: isolated KubeStore)
}

extension KubeTestController {
    public func tick(store: isolated KubeStore) {}
}

/// The state of the fake cluster: objects, the global resourceVersion counter, the event history and
/// the open watches. All REST handling runs inside this actor.
public actor KubeStore {
    var types: [String: ResourceType] = [:]            // "group/version/plural"
    var objects: [String: [String: JSONValue]] = [:]   // storageKey -> "ns/name" -> object
    var storageTypes: [String: ResourceType] = [:]     // storageKey -> the type objects are stored as
    public internal(set) var currentResourceVersion = 100
    var history: [KubeChange] = []
    /// Watches and lists older than this RV get 410.
    var compactedResourceVersion = 100
    public var historyLimit = 10_000
    var watchers: [Int: WatchRegistration] = [:]
    var nextWatcherID = 1
    var controllers: [any KubeTestController] = []
    var pendingChanges: [KubeChange] = []
    var draining = false
    var validators: [String: @Sendable (JSONValue) -> [Cause]] = [:]
    var authorizer: (@Sendable (KubeUser, AuthorizationAttributes) -> Bool)?
    public internal(set) var requestLog: [RecordedRequest] = []
    var tokens: [String: String]
    let clock: TestClock
    var bookmarkInterval: Duration = .seconds(60)
    var scheduledTicks: [Date] = []
    /// The field manager of the request being handled (`fieldManager`, else the User-Agent's first segment);
    /// nil while controllers run.
    var requestFieldManager: String?
    /// `fieldValidation` of the request being handled, and the `Warning` headers it collected.
    var requestFieldValidation: String?
    var requestWarnings: [String] = []
    var requestIsPatch = false
    /// Who sent the request being handled (nil while controllers run), for admission checks.
    var requestUser: KubeUser?
    /// openAPIV3Schema per "group/version/plural" of the CRDs served.
    var crdSchemas: [String: JSONValue] = [:]
    /// The manager controllers' writes are recorded under.
    public var controllerFieldManager = "kube-controller-manager"

    init(resources: [ResourceType], tokens: [String: String], clock: TestClock) {
        self.tokens = tokens
        self.clock = clock
        for rt in resources {
            types["\(rt.group)/\(rt.version)/\(rt.plural)"] = rt
            if storageTypes[rt.storageKey] == nil { storageTypes[rt.storageKey] = rt }
        }
    }

    // MARK: - Types

    func registerSync(_ rt: ResourceType) {
        types["\(rt.group)/\(rt.version)/\(rt.plural)"] = rt
        if storageTypes[rt.storageKey] == nil { storageTypes[rt.storageKey] = rt }
    }

    public func register(_ rt: ResourceType) { registerSync(rt) }

    func unregister(group: String, plural: String) {
        types = types.filter { !($0.value.group == group && $0.value.plural == plural) }
        storageTypes["\(group)/\(plural)"] = nil
    }

    func type(group: String, version: String, plural: String) -> ResourceType? {
        types["\(group)/\(version)/\(plural)"]
    }

    func groupVersionExists(group: String, version: String) -> Bool {
        types.values.contains { $0.group == group && $0.version == version }
    }

    public func resourceType(group: String, version: String, plural: String) -> ResourceType? {
        type(group: group, version: version, plural: plural)
    }

    public func addController(_ c: any KubeTestController) { controllers.append(c) }

    /// A validation hook run on create/update/patch/apply of `resource`; non-empty causes give a 422 Invalid.
    public func setValidator(for rt: ResourceType, _ validate: @escaping @Sendable (JSONValue) -> [Cause]) {
        validators[rt.storageKey] = validate
    }

    public func setAuthorizer(_ authorize: (@Sendable (KubeUser, AuthorizationAttributes) -> Bool)?) { authorizer = authorize }
    public func setTokens(_ t: [String: String]) { tokens = t }
    public func setBookmarkInterval(_ d: Duration) { bookmarkInterval = d }
    public func clearRequestLog() { requestLog.removeAll() }

    // MARK: - Raw object access (for controllers and tests; no validation, no admission)

    static func key(namespace: String?, name: String) -> String { "\(namespace ?? "")/\(name)" }

    public func get(_ rt: ResourceType, namespace: String?, name: String) -> JSONValue? {
        objects[rt.storageKey]?[Self.key(namespace: rt.namespaced ? namespace : nil, name: name)].map { present($0, as: rt) }
    }

    /// Current objects of a type (optionally in one namespace), sorted by namespace/name.
    public func list(_ rt: ResourceType, namespace: String? = nil, labelSelector: String? = nil) -> [JSONValue] {
        let sel = (try? LabelSelector.parse(labelSelector ?? "")) ?? LabelSelector()
        return (objects[rt.storageKey] ?? [:]).sorted { $0.key < $1.key }.map(\.value).filter {
            (namespace == nil || $0["metadata"]?["namespace"]?.stringValue == namespace) && sel.matches($0.labels)
        }.map { present($0, as: rt) }
    }

    /// Rewrites apiVersion/kind for the version the caller asked for (custom resources may serve several).
    func present(_ obj: JSONValue, as rt: ResourceType) -> JSONValue {
        var o = EventConversion.isEventsV1(rt) && obj["apiVersion"] != .string(rt.apiVersion) ? EventConversion.toV1(obj) : obj
        o["apiVersion"] = .string(rt.apiVersion)
        o["kind"] = .string(rt.kind)
        return o
    }

    func nextRV() -> Int {
        currentResourceVersion += 1
        return currentResourceVersion
    }

    func now() -> Date { clock.now() }
    func timestamp() -> String { Self.formatTime(clock.now()) }

    static func formatTime(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: d)
    }

    static func formatMicroTime(_ d: Date) -> String {
        let secs = Self.formatTime(d).dropLast()
        let micros = Int((d.timeIntervalSince1970 - d.timeIntervalSince1970.rounded(.down)) * 1_000_000)
        return "\(secs).\(String(format: "%06d", micros))Z"
    }

    /// Stores `obj` (create or replace), assigning a new resourceVersion, recording history and notifying watches.
    @discardableResult
    func commit(_ rt: ResourceType, _ obj: JSONValue, type: WatchEventType) -> JSONValue {
        let rv = nextRV()
        var o = obj
        o[keyPath: "metadata", "resourceVersion"] = .string(String(rv))
        let ns = rt.namespaced ? o["metadata"]?["namespace"]?.stringValue : nil
        let name = o["metadata"]?["name"]?.stringValue ?? ""
        let k = Self.key(namespace: ns, name: name)
        let previous = objects[rt.storageKey]?[k]
        if type == .deleted { objects[rt.storageKey]?[k] = nil } else { objects[rt.storageKey, default: [:]][k] = o }
        let change = KubeChange(type: type, resource: storageTypes[rt.storageKey] ?? rt, object: o, previous: previous,
                                resourceVersion: rv)
        history.append(change)
        if history.count > historyLimit {
            let drop = history.count - historyLimit
            compactedResourceVersion = history[drop - 1].resourceVersion
            history.removeFirst(drop)
        }
        dispatchToWatchers(change)
        pendingChanges.append(change)
        return o
    }

    /// Runs controllers until no more changes are pending.
    func drainControllers() {
        guard !draining else { return }
        draining = true
        defer { draining = false }
        var rounds = 0
        while !pendingChanges.isEmpty, rounds < 10_000 {
            rounds += 1
            let change = pendingChanges.removeFirst()
            builtinReconcile(change)
            for c in controllers { c.reconcile(change, store: self) }
        }
    }

    // MARK: - Public test controls

    /// Forgets the history up to now: watches from an older RV get the 410 ERROR event, older continue tokens 410.
    public func compact() {
        compactedResourceVersion = currentResourceVersion
        history.removeAll()
    }

    /// Runs time-based controller work (ready delays etc.) for the current clock.
    public func tick() {
        scheduledTicks.removeAll { $0 <= now() }
        for c in controllers { c.tick(store: self) }
        drainControllers()
    }

    /// Asks for a `tick()` after `delay` of clock time (real sleep with the system clock; `advance` with a manual one).
    public func scheduleTick(after delay: Duration) {
        let at = now().addingTimeInterval(delay.seconds)
        if clock.isManual { scheduledTicks.append(at); return }
        Task { [weak self] in
            try? await Task.sleep(for: delay)
            await self?.tick()
        }
    }

    func advance(by d: Duration) {
        clock.advance(by: d)
        tick()
    }

    /// Objects at a past resourceVersion, reconstructed by undoing history (nil if compacted away).
    func snapshot(_ rt: ResourceType, at rv: Int) -> [String: JSONValue]? {
        var state = objects[rt.storageKey] ?? [:]
        if rv >= currentResourceVersion { return state }
        if rv < compactedResourceVersion { return nil }
        for change in history.reversed() where change.resourceVersion > rv {
            guard change.resource.storageKey == rt.storageKey else { continue }
            let ns = rt.namespaced ? change.object["metadata"]?["namespace"]?.stringValue : nil
            let k = Self.key(namespace: ns, name: change.object["metadata"]?["name"]?.stringValue ?? "")
            state[k] = change.previous
        }
        return state
    }

    // MARK: - Write helpers for controllers (no validation)

    /// Creates an object as a controller would (uid/timestamps/RV filled). Returns nil if it already exists.
    @discardableResult
    public func create(_ rt: ResourceType, _ object: JSONValue) -> JSONValue? {
        var o = object
        let ns = rt.namespaced ? o["metadata"]?["namespace"]?.stringValue : nil
        var name = o["metadata"]?["name"]?.stringValue ?? ""
        if name.isEmpty, let gen = o["metadata"]?["generateName"]?.stringValue {
            name = gen + Self.randomSuffix()
            o[keyPath: "metadata", "name"] = .string(name)
        }
        guard objects[rt.storageKey]?[Self.key(namespace: ns, name: name)] == nil else { return nil }
        o = initializeMetadata(rt, o)
        o = recordControllerWrite(rt, old: nil, new: o)
        return commit(rt, o, type: .added)
    }

    /// Replaces an existing object unconditionally (no-op, and no new RV, if nothing changed).
    @discardableResult
    public func update(_ rt: ResourceType, _ object: JSONValue) -> JSONValue? {
        let ns = rt.namespaced ? object["metadata"]?["namespace"]?.stringValue : nil
        let name = object["metadata"]?["name"]?.stringValue ?? ""
        guard let old = objects[rt.storageKey]?[Self.key(namespace: ns, name: name)] else { return nil }
        var o = object
        o[keyPath: "metadata", "resourceVersion"] = old["metadata"]?["resourceVersion"]
        o[keyPath: "metadata", "managedFields"] = old["metadata"]?["managedFields"]
        if o == old { return old }
        o = recordControllerWrite(rt, old: old, new: o)
        return commit(rt, o, type: .modified)
    }

    /// Controllers' writes are Updates by `controllerFieldManager`; status changes through the status subresource.
    func recordControllerWrite(_ rt: ResourceType, old: JSONValue?, new: JSONValue) -> JSONValue {
        let manager = requestFieldManager ?? controllerFieldManager
        var o = ManagedFields.recordUpdate(old: old, new: new, rt, manager: manager, subresource: nil, time: timestamp())
        if rt.hasStatus {
            o = ManagedFields.recordUpdate(old: old, new: o, rt, manager: manager, subresource: "status", time: timestamp(), base: o)
        }
        return o
    }

    /// Deletes immediately (no finalizers, no grace). Returns the deleted object.
    @discardableResult
    public func delete(_ rt: ResourceType, namespace: String?, name: String) -> JSONValue? {
        guard let old = objects[rt.storageKey]?[Self.key(namespace: rt.namespaced ? namespace : nil, name: name)] else {
            return nil
        }
        let deleted = commit(rt, old, type: .deleted)
        drainControllers()  // the garbage collector cascades (no-op when called from a controller)
        return deleted
    }

    func initializeMetadata(_ rt: ResourceType, _ object: JSONValue) -> JSONValue {
        var o = object
        o["apiVersion"] = .string(rt.apiVersion)
        o["kind"] = .string(rt.kind)
        o[keyPath: "metadata", "uid"] = .string(UUID().uuidString.lowercased())
        o[keyPath: "metadata", "creationTimestamp"] = .string(timestamp())
        if hasGeneration(rt) { o[keyPath: "metadata", "generation"] = 1 }
        if !rt.namespaced { o[keyPath: "metadata", "namespace"] = nil }
        return o
    }

    func hasGeneration(_ rt: ResourceType) -> Bool {
        rt.isCustom || ["deployments", "pods", "customresourcedefinitions"].contains(rt.plural)
    }

    static func randomSuffix() -> String {
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        return String((0..<5).map { _ in alphabet.randomElement()! })
    }

    func findType(kind: String, apiVersion: String) -> ResourceType? {
        types.values.first { $0.kind == kind && $0.apiVersion == apiVersion }
    }
}

extension JSONValue {
    /// Nested set through object keys, creating intermediate objects: `o[keyPath: "metadata", "name"] = "x"`.
    subscript(keyPath keys: String...) -> JSONValue? {
        get { var c: JSONValue? = self; for k in keys { c = c?[k] }; return c }
        set { self = Patch.set(self, keys: keys, to: newValue) }
    }
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
