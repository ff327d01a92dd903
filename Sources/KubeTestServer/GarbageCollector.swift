import Foundation
import Shared

/// kube-controller-manager's garbage collector, run after every committed change (deterministic, no delays):
/// - an object whose owners are all gone (absent, or present with another uid) is deleted with
///   Background propagation (its finalizers, if any, hold it with a deletionTimestamp);
/// - dangling references next to a live owner are removed from `ownerReferences`;
/// - an owner deleted with `Foreground` (finalizer `foregroundDeletion`) has its dependents deleted and is
///   itself deleted once no dependent with `blockOwnerDeletion: true` is left;
/// - an owner deleted with `Orphan` (finalizer `orphan`) has its references removed from the dependents.
/// Owner references to a kind the server does not serve (or a namespaced owner of a cluster-scoped object)
/// are left alone, as the real collector cannot resolve them either.
public struct GarbageCollector: KubeTestController {
    public init() {}
    public func reconcile(_ change: KubeChange, store: isolated KubeStore) {
        store.collectGarbage(after: change)
    }
}

extension KubeStore {
    enum OwnerState { case solid, dangling, waitingForDependents, unresolved }

    struct StoredObject {
        var type: ResourceType
        var object: JSONValue
        var uid: String { object["metadata"]?["uid"]?.stringValue ?? "" }
    }

    static func ownerReferences(_ obj: JSONValue) -> [JSONValue] {
        obj["metadata"]?["ownerReferences"]?.arrayValue ?? []
    }

    static func finalizers(_ obj: JSONValue) -> [JSONValue] {
        obj["metadata"]?["finalizers"]?.arrayValue ?? []
    }

    static func isTerminating(_ obj: JSONValue) -> Bool { obj["metadata"]?["deletionTimestamp"] != nil }

    static func isDeletingDependents(_ obj: JSONValue) -> Bool {
        isTerminating(obj) && finalizers(obj).contains("foregroundDeletion")
    }

    /// The current stored form of an object (by type, namespace and name).
    func current(_ rt: ResourceType, _ obj: JSONValue) -> JSONValue? {
        let ns = rt.namespaced ? obj["metadata"]?["namespace"]?.stringValue : nil
        return objects[rt.storageKey]?[Self.key(namespace: ns, name: obj["metadata"]?["name"]?.stringValue ?? "")]
    }

    /// The owner an ownerReference of `dependent` points at, if its kind is served.
    func resolveOwner(_ ref: JSONValue, of dependent: StoredObject) -> (OwnerState, StoredObject?) {
        let apiVersion = ref["apiVersion"]?.stringValue ?? ""
        let group = apiVersion.contains("/") ? String(apiVersion.split(separator: "/")[0]) : ""
        let kind = ref["kind"]?.stringValue ?? ""
        guard let rt = storageTypes.values.first(where: { $0.group == group && $0.kind == kind }) else { return (.unresolved, nil) }
        if rt.namespaced && !dependent.type.namespaced { return (.unresolved, nil) }
        let ns = rt.namespaced ? dependent.object["metadata"]?["namespace"]?.stringValue : nil
        guard let owner = objects[rt.storageKey]?[Self.key(namespace: ns, name: ref["name"]?.stringValue ?? "")],
              owner["metadata"]?["uid"] == ref["uid"] else { return (.dangling, nil) }
        let stored = StoredObject(type: rt, object: owner)
        return (Self.isDeletingDependents(owner) ? .waitingForDependents : .solid, stored)
    }

    /// Every stored object with an ownerReference to `uid`.
    func dependents(of uid: String) -> [StoredObject] {
        guard !uid.isEmpty else { return [] }
        var out: [StoredObject] = []
        for (storageKey, objs) in objects.sorted(by: { $0.key < $1.key }) {
            guard let rt = storageTypes[storageKey] else { continue }
            for (_, obj) in objs.sorted(by: { $0.key < $1.key })
            where Self.ownerReferences(obj).contains(where: { $0["uid"]?.stringValue == uid }) {
                out.append(StoredObject(type: rt, object: obj))
            }
        }
        return out
    }

    func collectGarbage(after change: KubeChange) {
        let changed = StoredObject(type: change.resource, object: change.object)
        if change.type == .deleted {
            for dependent in dependents(of: changed.uid) { attemptToDelete(dependent) }
        } else if let live = current(change.resource, change.object) {
            let item = StoredObject(type: change.resource, object: live)
            if Self.isDeletingDependents(live) { processDeletingDependents(item) }
            if Self.isTerminating(live), Self.finalizers(live).contains("orphan") { orphanDependents(item) }
            if !Self.ownerReferences(live).isEmpty { attemptToDelete(item) }
        }
        // Owners waiting in foreground for this object (it went away, or dropped/unblocked its reference).
        let refs = Self.ownerReferences(change.object) + Self.ownerReferences(change.previous ?? .null)
        var seen: Set<String> = []
        for ref in refs {
            guard let uid = ref["uid"]?.stringValue, seen.insert(uid).inserted else { continue }
            if case (.waitingForDependents, let owner?) = resolveOwner(ref, of: changed) { processDeletingDependents(owner) }
        }
    }

    /// The collector's `attemptToDeleteItem`.
    func attemptToDelete(_ item: StoredObject) {
        guard let live = current(item.type, item.object), live["metadata"]?["uid"]?.stringValue == item.uid,
              !Self.isTerminating(live) else { return }
        let refs = Self.ownerReferences(live)
        guard !refs.isEmpty else { return }
        var solid = false, unresolved = false
        var remove: Set<String> = [], waiting = false
        for ref in refs {
            switch resolveOwner(ref, of: StoredObject(type: item.type, object: live)).0 {
            case .solid: solid = true
            case .unresolved: unresolved = true
            case .dangling: remove.insert(ref["uid"]?.stringValue ?? "")
            case .waitingForDependents:
                waiting = true
                remove.insert(ref["uid"]?.stringValue ?? "")
            }
        }
        if unresolved { return }
        if solid {
            guard !remove.isEmpty else { return }
            var o = live
            let left = refs.filter { !remove.contains($0["uid"]?.stringValue ?? "") }
            o[keyPath: "metadata", "ownerReferences"] = left.isEmpty ? nil : .array(left)
            commit(item.type, o, type: .modified)
            return
        }
        let policy: String
        if waiting && !dependents(of: item.uid).isEmpty { policy = "Foreground" }
        else { policy = "Background" }
        _ = performDelete(item.type, live, policy: policy, grace: nil)
    }

    /// An owner deleted in foreground: delete its dependents; finish once none blocks it any more.
    func processDeletingDependents(_ owner: StoredObject) {
        for dependent in dependents(of: owner.uid) { attemptToDelete(dependent) }
        let blocking = dependents(of: owner.uid).filter { dep in
            Self.ownerReferences(dep.object).contains { $0["uid"]?.stringValue == owner.uid && $0["blockOwnerDeletion"] == true }
        }
        guard blocking.isEmpty, let live = current(owner.type, owner.object) else { return }
        removeFinalizer("foregroundDeletion", owner.type, live)
    }

    /// An owner deleted with `Orphan`: drop the references to it, then its `orphan` finalizer.
    func orphanDependents(_ owner: StoredObject) {
        for dep in dependents(of: owner.uid) {
            var o = dep.object
            let left = Self.ownerReferences(o).filter { $0["uid"]?.stringValue != owner.uid }
            o[keyPath: "metadata", "ownerReferences"] = left.isEmpty ? nil : .array(left)
            commit(dep.type, o, type: .modified)
        }
        if let live = current(owner.type, owner.object) { removeFinalizer("orphan", owner.type, live) }
    }

    /// Removes one finalizer; an object being deleted goes away with its last finalizer.
    func removeFinalizer(_ name: String, _ rt: ResourceType, _ obj: JSONValue) {
        let left = Self.finalizers(obj).filter { $0.stringValue != name }
        var o = obj
        o[keyPath: "metadata", "finalizers"] = left.isEmpty ? nil : .array(left)
        if left.isEmpty && Self.isTerminating(o) { commit(rt, o, type: .deleted) } else if o != obj { commit(rt, o, type: .modified) }
    }
}
