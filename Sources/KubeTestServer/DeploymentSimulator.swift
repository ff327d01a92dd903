import Foundation
import Shared
import Synchronization

/// Simulates kube-controller-manager's Deployment/ReplicaSet controllers, the scheduler and a kubelet:
/// Pods are created/deleted to match `spec.replicas`, become Ready after `readyDelay` (clock time), and
/// the Deployment's status follows. Failures can be injected per Deployment.
///
/// Each pod template gets a ReplicaSet `<deployment>-<pod-template-hash>` (owned by the Deployment, with the
/// `deployment.kubernetes.io/revision` annotation); its Pods are owned by it. A template change rolls within
/// maxSurge/maxUnavailable: old Pods go once enough new ones are Ready.
public final class DeploymentSimulator: KubeTestController, Sendable {
    public enum Failure: Sendable, Equatable {
        /// Container starts and crashes: waiting CrashLoopBackOff, restartCount, BackOff Warning Event.
        case crashLoopBackOff(restartCount: Int = 3)
        /// Image cannot be pulled: waiting ErrImagePull + Failed Warning Event.
        case errImagePull(message: String = "rpc error: code = NotFound desc = failed to pull and unpack image: not found")
        /// Image pull back-off: waiting ImagePullBackOff + Failed/BackOff Warning Events.
        case imagePullBackOff(message: String = "rpc error: code = NotFound desc = failed to pull and unpack image: not found")
        /// No node fits: PodScheduled False/Unschedulable + FailedScheduling Warning Event.
        case unschedulable(message: String = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.")
    }

    struct Config {
        var readyDelay: Duration = .zero
        var autoReady = true
        var podIP = "127.0.0.1"
        var nodeName = "fake-node-1"
        var failures: [String: Failure] = [:]     // "ns/name"
        var podIPs: [String: String] = [:]        // "ns/name" -> IP
        var readyAt: [String: Date] = [:]         // pod uid -> when it becomes Ready
    }

    private let config = Mutex(Config())

    public init() {}

    /// How long (clock time) a started Pod takes to become Ready. Zero = Ready in the same reconcile.
    public var readyDelay: Duration {
        get { config.withLock { $0.readyDelay } }
        set { config.withLock { $0.readyDelay = newValue } }
    }

    /// When false, Pods stay not-Ready until `KubeTestServer.markPodsReady` is called.
    public var autoReady: Bool {
        get { config.withLock { $0.autoReady } }
        set { config.withLock { $0.autoReady = newValue } }
    }

    /// status.podIP for every simulated Pod (default 127.0.0.1, so a test backend on localhost is reachable).
    public var podIP: String {
        get { config.withLock { $0.podIP } }
        set { config.withLock { $0.podIP = newValue } }
    }

    public func setPodIP(_ ip: String?, namespace: String, deployment: String) {
        config.withLock { $0.podIPs["\(namespace)/\(deployment)"] = ip }
    }

    /// Injects (or with nil clears) a failure for a Deployment's Pods. Takes effect for Pods created from
    /// now on; call `KubeTestServer.resyncDeployment` (or `setDeploymentFailure` on the server) to replace existing ones.
    public func setFailure(_ failure: Failure?, namespace: String, deployment: String) {
        config.withLock { $0.failures["\(namespace)/\(deployment)"] = failure }
    }

    func failure(_ ns: String, _ name: String) -> Failure? { config.withLock { $0.failures["\(ns)/\(name)"] } }

    // MARK: - Controller

    public func reconcile(_ change: KubeChange, store: isolated KubeStore) {
        switch change.resource.storageKey {
        case ResourceType.deployments.storageKey:
            let ns = change.object["metadata"]?["namespace"]?.stringValue ?? ""
            let name = change.object["metadata"]?["name"]?.stringValue ?? ""
            if change.type == .deleted {
                for pod in ownedPods(ns, name, store: store) { deletePod(pod, store: store) }
            } else {
                sync(ns, name, store: store)
            }
        case ResourceType.replicaSets.storageKey:
            // A ReplicaSet of ours was changed or deleted by someone else: the Deployment controller restores it.
            guard let ref = (change.object["metadata"]?["ownerReferences"]?.arrayValue ?? []).first(where: { $0["kind"] == "Deployment" }),
                  let deployment = ref["name"]?.stringValue, change.type == .deleted else { return }
            sync(change.object["metadata"]?["namespace"]?.stringValue ?? "", deployment, store: store)
        case ResourceType.pods.storageKey:
            // A Pod of ours changed (deleted by a test, status patched): resync its Deployment.
            guard let ref = (change.object["metadata"]?["ownerReferences"]?.arrayValue ?? []).first(where: { $0["kind"] == "ReplicaSet" }),
                  let rsName = ref["name"]?.stringValue, let dash = rsName.lastIndex(of: "-") else { return }
            let ns = change.object["metadata"]?["namespace"]?.stringValue ?? ""
            let deployment = String(rsName[..<dash])
            if store.get(.deployments, namespace: ns, name: deployment) != nil { sync(ns, deployment, store: store) }
        default:
            break
        }
    }

    public func tick(store: isolated KubeStore) {
        let now = store.now()
        let due: Set<String> = config.withLock { c in
            Set(c.readyAt.filter { $0.value <= now }.map(\.key))
        }
        guard !due.isEmpty else { return }
        for dep in store.list(.deployments) {
            let ns = dep["metadata"]?["namespace"]?.stringValue ?? "", name = dep["metadata"]?["name"]?.stringValue ?? ""
            sync(ns, name, store: store)
        }
    }

    /// Marks the Deployment's running, healthy Pods Ready now (for `autoReady = false` or long delays).
    func markReady(_ ns: String, _ name: String, store: isolated KubeStore) {
        for pod in ownedPods(ns, name, store: store) where !isReady(pod) && podFailure(pod) == nil && pod["spec"]?["nodeName"] != nil {
            setReady(pod, store: store)
        }
        sync(ns, name, store: store)
    }

    /// Deletes the Deployment's Pods that don't match the current failure setting; `sync` recreates them.
    func resync(_ ns: String, _ name: String, store: isolated KubeStore) {
        let wanted = failure(ns, name)
        for pod in ownedPods(ns, name, store: store) where podFailure(pod) != wanted.map(Self.kindOf) {
            deletePod(pod, store: store)
        }
        sync(ns, name, store: store)
    }

    // MARK: - Sync

    /// The Deployment's ReplicaSets (owned through a controller reference with its uid).
    func ownedReplicaSets(_ dep: JSONValue, store: isolated KubeStore) -> [JSONValue] {
        let uid = dep["metadata"]?["uid"]
        return store.list(.replicaSets, namespace: dep["metadata"]?["namespace"]?.stringValue).filter { rs in
            (rs["metadata"]?["ownerReferences"]?.arrayValue ?? []).contains { $0["uid"] == uid && $0["controller"] == true }
        }
    }

    static func revision(_ obj: JSONValue) -> Int {
        Int(obj["metadata"]?["annotations"]?["deployment.kubernetes.io/revision"]?.stringValue ?? "") ?? 0
    }

    /// maxSurge / maxUnavailable of a RollingUpdate strategy (percentages of `desired`: surge rounds up,
    /// unavailable down, as the deployment controller does; both 0 is treated as unavailable 1).
    static func rollingBounds(_ dep: JSONValue, desired: Int) -> (surge: Int, unavailable: Int) {
        let ru = dep["spec"]?["strategy"]?["rollingUpdate"]
        func value(_ v: JSONValue?, roundUp: Bool) -> Int {
            guard let v else { return roundUp ? (desired + 3) / 4 : desired / 4 }
            if let i = v.intValue { return i }
            let s = v.stringValue ?? "25%"
            let pct = Int(s.dropLast()) ?? 25
            return roundUp ? (desired * pct + 99) / 100 : desired * pct / 100
        }
        if dep["spec"]?["strategy"]?["type"] == "Recreate" { return (0, desired) }
        let surge = value(ru?["maxSurge"], roundUp: true), unavailable = value(ru?["maxUnavailable"], roundUp: false)
        return surge == 0 && unavailable == 0 ? (0, 1) : (surge, unavailable)
    }

    func sync(_ ns: String, _ name: String, store: isolated KubeStore) {
        guard var dep = store.get(.deployments, namespace: ns, name: name), dep["metadata"]?["deletionTimestamp"] == nil else { return }
        var template = dep["spec"]?["template"] ?? .object([:])
        let hash = Self.templateHash(template)
        let rsName = "\(name)-\(hash)"
        let desired = dep["spec"]?["replicas"]?.intValue ?? 1
        let (maxSurge, maxUnavailable) = Self.rollingBounds(dep, desired: desired)
        // The ReplicaSet of the current template (created with the next revision when the template changed).
        let replicaSets = ownedReplicaSets(dep, store: store)
        let maxRevision = replicaSets.map(Self.revision).max() ?? 0
        template[keyPath: "metadata", "labels", "pod-template-hash"] = .string(hash)
        var newRS = replicaSets.first { $0["metadata"]?["name"]?.stringValue == rsName }
        if newRS == nil {
            var selector = dep["spec"]?["selector"] ?? .object([:])
            selector[keyPath: "matchLabels", "pod-template-hash"] = .string(hash)
            let rs: JSONValue = [
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": ["name": .string(rsName), "namespace": .string(ns), "labels": template["metadata"]?["labels"] ?? .object([:]),
                             "annotations": ["deployment.kubernetes.io/desired-replicas": .string(String(desired)),
                                             "deployment.kubernetes.io/max-replicas": .string(String(desired + maxSurge)),
                                             "deployment.kubernetes.io/revision": .string(String(maxRevision + 1))],
                             "ownerReferences": [["apiVersion": "apps/v1", "kind": "Deployment", "name": .string(name),
                                                  "uid": dep["metadata"]?["uid"] ?? "", "controller": true, "blockOwnerDeletion": true]]],
                "spec": ["replicas": 0, "selector": selector, "template": template],
                "status": ["replicas": 0],
            ]
            newRS = store.create(.replicaSets, rs)
        } else if Self.revision(newRS!) < maxRevision, replicaSets.count > 1 {
            // Rolled back to an older template: it becomes the newest revision again.
            var rs = newRS!
            rs[keyPath: "metadata", "annotations", "deployment.kubernetes.io/revision"] = .string(String(maxRevision + 1))
            newRS = store.update(.replicaSets, rs)
        }
        guard let newRS else { return }
        let rsUID = newRS["metadata"]?["uid"]?.stringValue ?? ""
        var pods = ownedPods(ns, name, store: store)
        var oldPods = pods.filter { $0["metadata"]?["labels"]?["pod-template-hash"]?.stringValue != hash }
        pods = pods.filter { $0["metadata"]?["labels"]?["pod-template-hash"]?.stringValue == hash }
        let before = pods.count
        // Scale the new ReplicaSet up, within desired + maxSurge in total.
        let room = max(0, desired + maxSurge - pods.count - oldPods.count)
        let target = min(desired, pods.count + room)
        if pods.count < target {
            for _ in pods.count..<target {
                if let pod = createPod(dep, template: template, hash: hash, rsName: rsName, rsUID: rsUID, store: store) { pods.append(pod) }
            }
            event(store, ns: ns, involved: dep, kind: "Deployment", reason: "ScalingReplicaSet",
                  message: "Scaled up replica set \(rsName) from \(before) to \(target)", component: "deployment-controller")
        } else if pods.count > desired {
            // Scale down: not-ready Pods first, then the newest.
            let victims = pods.sorted { a, b in
                if isReady(a) != isReady(b) { return !isReady(a) }
                return (a["metadata"]?["creationTimestamp"]?.stringValue ?? "") > (b["metadata"]?["creationTimestamp"]?.stringValue ?? "")
            }.prefix(pods.count - desired)
            for v in victims { deletePod(v, store: store) }
            let gone = Set(victims.compactMap { $0["metadata"]?["uid"]?.stringValue })
            pods.removeAll { gone.contains($0["metadata"]?["uid"]?.stringValue ?? "") }
            event(store, ns: ns, involved: dep, kind: "Deployment", reason: "ScalingReplicaSet",
                  message: "Scaled down replica set \(rsName) from \(before) to \(desired)", component: "deployment-controller")
        }
        // Scale old ReplicaSets down while enough Pods stay ready (not-ready old Pods go first).
        var ready = (pods + oldPods).filter(isReady).count
        for old in oldPods.sorted(by: { !isReady($0) && isReady($1) }) {
            let wasReady = isReady(old)
            guard !wasReady || ready - 1 >= desired - maxUnavailable else { continue }
            deletePod(old, store: store)
            if wasReady { ready -= 1 }
            oldPods.removeAll { $0["metadata"]?["uid"] == old["metadata"]?["uid"] }
        }
        syncReplicaSets(dep, newRS: newRS, desired: target, store: store)
        // Readiness (time-based).
        let now = store.now()
        for (i, pod) in pods.enumerated() where !isReady(pod) {
            let uid = pod["metadata"]?["uid"]?.stringValue ?? ""
            let due = config.withLock { $0.readyAt[uid] }
            if let due, due <= now {
                pods[i] = setReady(pod, store: store)
            }
        }
        // Status.
        dep = store.get(.deployments, namespace: ns, name: name) ?? dep
        let updatedReady = pods.filter(isReady).count
        let readyAll = updatedReady + oldPods.filter(isReady).count
        let total = pods.count + oldPods.count
        var status = dep["status"]?.objectValue ?? [:]
        let oldConditions = status["conditions"]?.arrayValue ?? []
        status["observedGeneration"] = dep["metadata"]?["generation"]
        status["replicas"] = total == 0 ? nil : .int(total)
        status["updatedReplicas"] = pods.isEmpty ? nil : .int(pods.count)
        status["readyReplicas"] = readyAll == 0 ? nil : .int(readyAll)
        status["availableReplicas"] = readyAll == 0 ? nil : .int(readyAll)
        status["unavailableReplicas"] = max(desired, total) - readyAll <= 0 ? nil : .int(max(desired, total) - readyAll)
        status["terminatingReplicas"] = 0
        let available = readyAll >= desired - maxUnavailable
        let ts = store.timestamp()
        func condition(_ type: String, _ ok: Bool, _ reason: String, _ message: String) -> JSONValue {
            let old = oldConditions.first { $0["type"]?.stringValue == type }
            let same = old?["status"]?.stringValue == (ok ? "True" : "False")
            let sameReason = same && old?["reason"]?.stringValue == reason
            return ["type": .string(type), "status": ok ? "True" : "False",
                    "lastUpdateTime": sameReason ? (old?["lastUpdateTime"] ?? .string(ts)) : .string(ts),
                    "lastTransitionTime": same ? (old?["lastTransitionTime"] ?? .string(ts)) : .string(ts),
                    "reason": .string(reason), "message": .string(message)]
        }
        let availableCondition = condition("Available", available,
                                           available ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
                                           available ? "Deployment has minimum availability." : "Deployment does not have minimum availability.")
        let done = updatedReady >= desired && oldPods.isEmpty
        let progressing = condition("Progressing", true, done ? "NewReplicaSetAvailable" : "ReplicaSetUpdated",
                                    done ? "ReplicaSet \"\(rsName)\" has successfully progressed." : "ReplicaSet \"\(rsName)\" is progressing.")
        // Keep the order the real controller leaves (first-added first).
        var conditions: [JSONValue] = []
        for old in oldConditions {
            if old["type"] == "Available" { conditions.append(availableCondition) }
            if old["type"] == "Progressing" { conditions.append(progressing) }
        }
        if !conditions.contains(where: { $0["type"] == "Available" }) { conditions.append(availableCondition) }
        if !conditions.contains(where: { $0["type"] == "Progressing" }) { conditions.append(progressing) }
        status["conditions"] = .array(conditions)
        var updated = dep
        updated["status"] = .object(status)
        updated[keyPath: "metadata", "annotations", "deployment.kubernetes.io/revision"] =
            store.get(.replicaSets, namespace: ns, name: rsName)?["metadata"]?["annotations"]?["deployment.kubernetes.io/revision"] ?? "1"
        store.update(.deployments, updated)
    }

    /// ReplicaSet spec/status follow the Pods; old ReplicaSets beyond `revisionHistoryLimit` are deleted.
    func syncReplicaSets(_ dep: JSONValue, newRS: JSONValue, desired: Int, store: isolated KubeStore) {
        let ns = dep["metadata"]?["namespace"]?.stringValue ?? "", name = dep["metadata"]?["name"]?.stringValue ?? ""
        let pods = ownedPods(ns, name, store: store)
        var old: [JSONValue] = []
        for rs in ownedReplicaSets(dep, store: store) {
            let hash = rs["spec"]?["template"]?["metadata"]?["labels"]?["pod-template-hash"]
            let mine = pods.filter { $0["metadata"]?["labels"]?["pod-template-hash"] == hash }
            let isNew = rs["metadata"]?["uid"] == newRS["metadata"]?["uid"]
            var o = rs
            o[keyPath: "spec", "replicas"] = .int(isNew ? desired : mine.count)
            let ready = mine.filter(isReady).count
            var status: [String: JSONValue] = ["replicas": .int(mine.count), "observedGeneration": rs["metadata"]?["generation"] ?? 1]
            if !mine.isEmpty { status["fullyLabeledReplicas"] = .int(mine.count) }
            if ready > 0 { status["readyReplicas"] = .int(ready); status["availableReplicas"] = .int(ready) }
            status["terminatingReplicas"] = 0
            o["status"] = .object(status)
            store.update(.replicaSets, o)
            if !isNew { old.append(o) }
        }
        let limit = dep["spec"]?["revisionHistoryLimit"]?.intValue ?? 10
        let idle = old.filter { $0["spec"]?["replicas"] == 0 }.sorted { Self.revision($0) < Self.revision($1) }
        for rs in idle.prefix(max(0, idle.count - limit)) {
            store.delete(.replicaSets, namespace: ns, name: rs["metadata"]?["name"]?.stringValue ?? "")
        }
    }

    // MARK: - Pods

    func ownedPods(_ ns: String, _ deployment: String, store: isolated KubeStore) -> [JSONValue] {
        store.list(.pods, namespace: ns).filter { pod in
            guard pod["metadata"]?["deletionTimestamp"] == nil else { return false }
            return (pod["metadata"]?["ownerReferences"]?.arrayValue ?? []).contains { ref in
                guard ref["kind"] == "ReplicaSet", let n = ref["name"]?.stringValue, n.hasPrefix(deployment + "-") else { return false }
                return !n.dropFirst(deployment.count + 1).contains("-")
            }
        }
    }

    func isReady(_ pod: JSONValue) -> Bool {
        (pod["status"]?["conditions"]?.arrayValue ?? []).contains { $0["type"] == "Ready" && $0["status"] == "True" }
    }

    enum FailureKind: Equatable { case crash, pull, pullBackOff, unschedulable }
    static func kindOf(_ f: Failure) -> FailureKind {
        switch f {
        case .crashLoopBackOff: return .crash
        case .errImagePull: return .pull
        case .imagePullBackOff: return .pullBackOff
        case .unschedulable: return .unschedulable
        }
    }

    func podFailure(_ pod: JSONValue) -> FailureKind? {
        if (pod["status"]?["conditions"]?.arrayValue ?? []).contains(where: { $0["reason"] == "Unschedulable" }) { return .unschedulable }
        switch pod["status"]?["containerStatuses"]?.arrayValue?.first?["state"]?["waiting"]?["reason"]?.stringValue {
        case "CrashLoopBackOff": return .crash
        case "ErrImagePull": return .pull
        case "ImagePullBackOff": return .pullBackOff
        default: return nil
        }
    }

    func createPod(_ dep: JSONValue, template: JSONValue, hash: String, rsName: String, rsUID: String,
                   store: isolated KubeStore) -> JSONValue? {
        let ns = dep["metadata"]?["namespace"]?.stringValue ?? ""
        let depName = dep["metadata"]?["name"]?.stringValue ?? ""
        var labels = template["metadata"]?["labels"]?.objectValue ?? [:]
        labels["pod-template-hash"] = .string(hash)
        var meta: [String: JSONValue] = [
            "generateName": .string(rsName + "-"), "namespace": .string(ns), "labels": .object(labels),
            "ownerReferences": [["apiVersion": "apps/v1", "kind": "ReplicaSet", "name": .string(rsName),
                                 "uid": .string(rsUID),
                                 "controller": true, "blockOwnerDeletion": true]],
        ]
        if let ann = template["metadata"]?["annotations"] { meta["annotations"] = ann }
        let failure = self.failure(ns, depName)
        var spec = Defaults.apply(.pods, ["spec": template["spec"] ?? .object([:])])["spec"] ?? .object([:])
        let (ip, node) = config.withLock { ($0.podIPs["\(ns)/\(depName)"] ?? $0.podIP, $0.nodeName) }
        if failure.map(Self.kindOf) != .unschedulable { spec["nodeName"] = .string(node) }
        let pod: JSONValue = ["apiVersion": "v1", "kind": "Pod", "metadata": .object(meta), "spec": spec,
                              "status": ["phase": "Pending", "qosClass": "BestEffort"]]
        guard let created = store.create(.pods, pod) else { return nil }
        let podName = created["metadata"]?["name"]?.stringValue ?? ""
        event(store, ns: ns, involved: dep, kind: "ReplicaSet", name: rsName, reason: "SuccessfulCreate",
              message: "Created pod: \(podName)", component: "replicaset-controller")
        let ts = JSONValue.string(store.timestamp())
        func cond(_ type: String, _ ok: Bool, reason: String? = nil, message: String? = nil) -> JSONValue {
            var c: [String: JSONValue] = ["type": .string(type), "status": ok ? "True" : "False", "lastProbeTime": .null,
                                          "lastTransitionTime": ts]
            if let reason { c["reason"] = .string(reason) }
            if let message { c["message"] = .string(message) }
            return .object(c)
        }
        var status: [String: JSONValue] = ["qosClass": "BestEffort"]
        let containers = spec["containers"]?.arrayValue ?? []
        if case .unschedulable(let message) = failure {
            status["phase"] = "Pending"
            status["conditions"] = [cond("PodScheduled", false, reason: "Unschedulable", message: message)]
            event(store, ns: ns, involved: created, kind: "Pod", reason: "FailedScheduling", message: message,
                  component: "default-scheduler", type: "Warning")
            return store.update(.pods, Patch.set(created, path: "status", to: .object(status)))
        }
        event(store, ns: ns, involved: created, kind: "Pod", reason: "Scheduled",
              message: "Successfully assigned \(ns)/\(podName) to \(node)", component: "default-scheduler")
        let notReady = "containers with unready status: [\(containers.compactMap { $0["name"]?.stringValue }.joined(separator: " "))]"
        status["conditions"] = [cond("PodReadyToStartContainers", true), cond("Initialized", true),
                                cond("Ready", false, reason: "ContainersNotReady", message: notReady),
                                cond("ContainersReady", false, reason: "ContainersNotReady", message: notReady),
                                cond("PodScheduled", true)]
        status["hostIP"] = "127.0.0.1"
        status["hostIPs"] = [["ip": "127.0.0.1"]]
        status["startTime"] = ts
        var phase = "Running"
        var statuses: [JSONValue] = []
        for c in containers {
            let cname = c["name"]?.stringValue ?? "", image = c["image"]?.stringValue ?? ""
            var cs: [String: JSONValue] = ["name": .string(cname), "lastState": .object([:]), "ready": false, "restartCount": 0,
                                           "image": .string(image), "imageID": "", "started": false]
            switch failure {
            case .crashLoopBackOff(let restarts):
                cs["state"] = ["waiting": ["reason": "CrashLoopBackOff",
                                           "message": .string("back-off 40s restarting failed container=\(cname) pod=\(podName)_\(ns)(\(created["metadata"]?["uid"]?.stringValue ?? ""))")]]
                cs["lastState"] = ["terminated": ["exitCode": 1, "reason": "Error", "startedAt": ts, "finishedAt": ts,
                                                  "containerID": .string("fake://\(podName)/\(cname)")]]
                cs["restartCount"] = .int(restarts)
                cs["imageID"] = .string("fake://\(image)")
                cs["containerID"] = .string("fake://\(podName)/\(cname)")
                event(store, ns: ns, involved: created, kind: "Pod", reason: "BackOff",
                      message: "Back-off restarting failed container \(cname) in pod \(podName)_\(ns)(\(created["metadata"]?["uid"]?.stringValue ?? ""))",
                      component: "kubelet", type: "Warning", fieldPath: "spec.containers{\(cname)}")
            case .errImagePull(let message), .imagePullBackOff(let message):
                let backOff = failure.map(Self.kindOf) == .pullBackOff
                phase = "Pending"
                cs["state"] = ["waiting": ["reason": backOff ? "ImagePullBackOff" : "ErrImagePull",
                                           "message": .string(backOff ? "Back-off pulling image \"\(image)\": ErrImagePull: \(message)" : message)]]
                event(store, ns: ns, involved: created, kind: "Pod", reason: "Failed",
                      message: "Failed to pull image \"\(image)\": \(message)", component: "kubelet", type: "Warning",
                      fieldPath: "spec.containers{\(cname)}")
                if backOff {
                    event(store, ns: ns, involved: created, kind: "Pod", reason: "BackOff",
                          message: "Back-off pulling image \"\(image)\"", component: "kubelet", type: "Warning",
                          fieldPath: "spec.containers{\(cname)}")
                }
            default:
                cs["state"] = ["running": ["startedAt": ts]]
                cs["started"] = true
                cs["imageID"] = .string("fake://\(image)")
                cs["containerID"] = .string("fake://\(created["metadata"]?["uid"]?.stringValue ?? "")/\(cname)")
            }
            statuses.append(.object(cs))
        }
        status["phase"] = .string(phase)
        if phase == "Running" {
            status["podIP"] = .string(ip)
            status["podIPs"] = [["ip": .string(ip)]]
        }
        status["containerStatuses"] = .array(statuses)
        var running = created
        running["status"] = .object(status)
        running = store.update(.pods, running) ?? running
        if failure == nil {
            let (auto, delay) = config.withLock { ($0.autoReady, $0.readyDelay) }
            if auto {
                let uid = created["metadata"]?["uid"]?.stringValue ?? ""
                config.withLock { $0.readyAt[uid] = store.now().addingTimeInterval(delay.seconds) }
                if delay > .zero { store.scheduleTick(after: delay) }
            }
        }
        return running
    }

    @discardableResult
    func setReady(_ pod: JSONValue, store: isolated KubeStore) -> JSONValue {
        var p = pod
        let ts = JSONValue.string(store.timestamp())
        let conds = (pod["status"]?["conditions"]?.arrayValue ?? []).map { c -> JSONValue in
            guard c["type"] == "Ready" || c["type"] == "ContainersReady" else { return c }
            return ["type": c["type"] ?? .null, "status": "True", "lastProbeTime": .null, "lastTransitionTime": ts]
        }
        p[keyPath: "status", "conditions"] = .array(conds)
        p[keyPath: "status", "containerStatuses"] = .array((pod["status"]?["containerStatuses"]?.arrayValue ?? []).map { cs in
            var c = cs
            c["ready"] = true
            c["started"] = true
            return c
        })
        let uid = pod["metadata"]?["uid"]?.stringValue ?? ""
        _ = config.withLock { $0.readyAt.removeValue(forKey: uid) }
        return store.update(.pods, p) ?? p
    }

    func deletePod(_ pod: JSONValue, store: isolated KubeStore) {
        let ns = pod["metadata"]?["namespace"]?.stringValue, name = pod["metadata"]?["name"]?.stringValue ?? ""
        // Graceful: MODIFIED with deletionTimestamp, then the kubelet removes it.
        var p = pod
        p[keyPath: "metadata", "deletionTimestamp"] = .string(store.timestamp())
        p[keyPath: "metadata", "deletionGracePeriodSeconds"] = .int(pod["spec"]?["terminationGracePeriodSeconds"]?.intValue ?? 30)
        store.update(.pods, p)
        store.delete(.pods, namespace: ns, name: name)
        let uid = pod["metadata"]?["uid"]?.stringValue ?? ""
        _ = config.withLock { $0.readyAt.removeValue(forKey: uid) }
    }

    // MARK: - Events

    func event(_ store: isolated KubeStore, ns: String, involved: JSONValue, kind: String, name: String? = nil, reason: String,
               message: String, component: String, type: String = "Normal", fieldPath: String? = nil) {
        let objName = name ?? involved["metadata"]?["name"]?.stringValue ?? ""
        var ref: [String: JSONValue] = ["kind": .string(kind), "namespace": .string(ns), "name": .string(objName),
                                        "apiVersion": .string(kind == "Pod" ? "v1" : "apps/v1")]
        if name == nil {
            ref["uid"] = involved["metadata"]?["uid"]
            ref["resourceVersion"] = involved["metadata"]?["resourceVersion"]
        }
        if let fieldPath { ref["fieldPath"] = .string(fieldPath) }
        let now = store.now()
        let ts = JSONValue.string(KubeStore.formatTime(now))
        let suffix = String(UInt64(now.timeIntervalSince1970 * 1e9) &+ UInt64.random(in: 0..<1_000_000), radix: 16)
        store.create(.events, ["apiVersion": "v1", "kind": "Event",
                               "metadata": ["name": .string("\(objName).\(suffix)"), "namespace": .string(ns)],
                               "involvedObject": .object(ref), "reason": .string(reason), "message": .string(message),
                               "source": ["component": .string(component)], "firstTimestamp": ts, "lastTimestamp": ts,
                               "count": 1, "type": .string(type), "eventTime": .null, "reportingComponent": .string(component),
                               "reportingInstance": ""])
    }

    // MARK: - Hashing

    static func fnv(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf29ce484222325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return h
    }

    static func templateHash(_ template: JSONValue) -> String {
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        var h = fnv(KubeJSON.string(template, sorted: true))
        var out = ""
        for _ in 0..<9 { out.append(alphabet[Int(h % 27)]); h /= 27 }
        return out
    }
}

extension KubeTestServer {
    /// Marks a Deployment's healthy Pods Ready now.
    public func markPodsReady(namespace: String, deployment: String) async {
        let sim = simulator
        await store.perform { store in sim.markReady(namespace, deployment, store: store) }
    }

    /// Sets (or clears) a failure mode and replaces the Deployment's existing Pods accordingly.
    public func setDeploymentFailure(_ failure: DeploymentSimulator.Failure?, namespace: String, deployment: String) async {
        simulator.setFailure(failure, namespace: namespace, deployment: deployment)
        let sim = simulator
        await store.perform { store in sim.resync(namespace, deployment, store: store) }
    }
}

extension KubeStore {
    /// Runs `body` inside the store (for controllers and test helpers), then runs pending controllers.
    public func perform<T: Sendable>(_ body: @Sendable (isolated KubeStore) -> T) -> T {
        let r = body(self)
        drainControllers()
        return r
    }
}
