import Synchronization

/// One model chill-server serves: how the proxy reaches it and how operators control it.
struct ServedModelHandle: Sendable {
    /// The VLLMModel's name (in process mode: the served name).
    let id: String
    /// What clients put in `model`.
    let servedName: String
    let proxy: any ProxyModel
    let control: any ModelControl
}

/// What the proxy found for a request's `model`.
enum ModelLookup: Sendable {
    case model(ServedModelHandle)
    /// No served model has that name.
    case unknown(requested: String, available: [String])
    /// The request named no model and there is no active model to send it to.
    case noActiveModel(available: [String])
}

/// Every served model by name, and which one is active. Read on the hot path (one short lock);
/// written by the controller when VLLMModels come, change and go.
final class ModelRegistry: Sendable {
    private struct State {
        var byID: [String: ServedModelHandle] = [:]
        var idByServedName: [String: String] = [:]
        var active: String?
    }

    private let state = Mutex(State())

    init() {}

    func resolve(_ requested: String?) -> ModelLookup {
        state.withLock { s in
            if let requested {
                if let id = s.idByServedName[requested], let handle = s.byID[id] { return .model(handle) }
                return .unknown(requested: requested, available: s.idByServedName.keys.sorted())
            }
            if let active = s.active, let handle = s.byID[active] { return .model(handle) }
            if s.byID.count == 1, let only = s.byID.values.first { return .model(only) }
            return .noActiveModel(available: s.idByServedName.keys.sorted())
        }
    }

    /// Adds or replaces a model. A served name already taken by another model stays with it (routing
    /// must not be ambiguous); returns false then.
    @discardableResult
    func put(_ handle: ServedModelHandle) -> Bool {
        state.withLock { s in
            if let owner = s.idByServedName[handle.servedName], owner != handle.id, s.byID[owner] != nil { return false }
            if let old = s.byID[handle.id], old.servedName != handle.servedName { s.idByServedName[old.servedName] = nil }
            s.byID[handle.id] = handle
            s.idByServedName[handle.servedName] = handle.id
            return true
        }
    }

    func remove(id: String) {
        state.withLock { s in
            guard let old = s.byID.removeValue(forKey: id) else { return }
            if s.idByServedName[old.servedName] == id { s.idByServedName[old.servedName] = nil }
        }
    }

    func setActive(_ id: String?) { state.withLock { $0.active = id } }
    var activeID: String? { state.withLock { $0.active } }

    func handle(id: String) -> ServedModelHandle? { state.withLock { $0.byID[id] } }

    /// The model a `?model=` parameter names: by served name or by VLLMModel name.
    func handle(named name: String) -> ServedModelHandle? {
        state.withLock { s in
            if let id = s.idByServedName[name], let handle = s.byID[id] { return handle }
            return s.byID[name]
        }
    }

    /// Every model, by id.
    var all: [ServedModelHandle] { state.withLock { $0.byID.values.sorted { $0.id < $1.id } } }
}
