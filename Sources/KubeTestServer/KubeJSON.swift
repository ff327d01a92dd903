import Foundation
import Shared

/// Serializes JSON the way kube-apiserver does: compact, Go string escaping (`<`, `>`, `&` as `\u003c`…),
/// built-in objects in Go struct field order (approximated per parent key), custom resources with
/// sorted keys.
enum KubeJSON {
    static func encode(_ value: JSONValue, sorted: Bool = false, newline: Bool = true) -> Data {
        var out = ""
        out.reserveCapacity(512)
        write(value, parentKey: nil, depth: 0, sorted: sorted, into: &out)
        if newline { out += "\n" }
        return Data(out.utf8)
    }

    static func string(_ value: JSONValue, sorted: Bool = false) -> String {
        String(decoding: encode(value, sorted: sorted, newline: false), as: UTF8.self)
    }

    private static func write(_ value: JSONValue, parentKey: String?, depth: Int, sorted: Bool, into out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += formatDouble(d)
        case .string(let s): writeString(s, into: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                write(item, parentKey: parentKey, depth: depth + 1, sorted: sorted, into: &out)
            }
            out += "]"
        case .object(let dict):
            out += "{"
            // A Status object is always in struct order, even inside a sorted custom-resource context.
            let isStatus = dict["kind"] == "Status" && dict["apiVersion"] == "v1"
            let keys = orderedKeys(dict, parentKey: parentKey, depth: depth, sorted: sorted && !isStatus)
            for (i, key) in keys.enumerated() {
                if i > 0 { out += "," }
                writeString(key, into: &out)
                out += ":"
                write(dict[key]!, parentKey: key, depth: depth + 1, sorted: sorted && !isStatus, into: &out)
            }
            out += "}"
        }
    }

    private static func formatDouble(_ d: Double) -> String {
        if d.isNaN || d.isInfinite { return "null" }
        if d == d.rounded(), abs(d) < 1e21 { return String(Int64(d)) }
        return "\(d)"
    }

    static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<": out += "\\u003c"
            case ">": out += "\\u003e"
            case "&": out += "\\u0026"
            case "\u{2028}": out += "\\u2028"
            case "\u{2029}": out += "\\u2029"
            default:
                if scalar.value < 0x20 {
                    out += "\\u00" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    // MARK: - Key order

    private static func orderedKeys(_ dict: [String: JSONValue], parentKey: String?, depth: Int, sorted: Bool) -> [String] {
        let all = dict.keys.sorted()
        if sorted { return all }
        let order = preferredOrder(dict, parentKey: parentKey, depth: depth)
        var rank: [String: Int] = [:]
        for (i, k) in order.enumerated() where rank[k] == nil { rank[k] = i }
        // Known keys in struct order; unknown keys after them, alphabetically (maps in Go are sorted).
        return all.sorted { a, b in
            switch (rank[a], rank[b]) {
            case let (x?, y?): return x < y
            case (_?, nil): return true
            case (nil, _?): return false
            default: return a < b
            }
        }
    }

    private static let objectRoot = ["kind", "apiVersion", "metadata", "items", "spec", "immutable", "data",
                                     "binaryData", "stringData", "involvedObject", "regarding", "reason", "message",
                                     "source", "firstTimestamp", "lastTimestamp", "count", "type", "eventTime", "series", "action",
                                     "related", "reportingComponent", "reportingController", "reportingInstance", "note",
                                     "deprecatedSource", "deprecatedFirstTimestamp", "deprecatedLastTimestamp", "deprecatedCount",
                                     "subjects", "roleRef", "rules", "aggregationRule", "secrets", "imagePullSecrets",
                                     "automountServiceAccountToken", "status", "object"]
    private static let statusRoot = ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"]
    private static let objectMeta = ["name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
                                     "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
                                     "annotations", "ownerReferences", "finalizers", "managedFields",
                                     "continue", "remainingItemCount"]
    private static let byParent: [String: [String]] = [
        "details": ["name", "group", "kind", "uid", "causes", "retryAfterSeconds"],
        "causes": ["reason", "message", "field"],
        "ownerReferences": ["apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion"],
        "involvedObject": ["kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"],
        "regarding": ["kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"],
        "conditions": ["type", "status", "observedGeneration", "lastProbeTime", "lastHeartbeatTime", "lastUpdateTime",
                       "lastTransitionTime", "reason", "message"],
        "containers": container, "initContainers": container,
        "ports": ["name", "protocol", "appProtocol", "hostPort", "containerPort", "port", "targetPort", "nodePort", "hostIP"],
        "env": ["name", "value", "valueFrom"],
        "selector": ["matchLabels", "matchExpressions"],
        "template": ["metadata", "spec"],
        "strategy": ["type", "rollingUpdate"],
        "rollingUpdate": ["maxUnavailable", "maxSurge"],
        "containerStatuses": ["name", "state", "lastState", "ready", "restartCount", "image", "imageID", "containerID",
                              "started", "allocatedResources", "resources"],
        "waiting": ["reason", "message"],
        "terminated": ["exitCode", "signal", "reason", "message", "startedAt", "finishedAt", "containerID"],
        "managedFields": ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1", "subresource"],
        "subjects": ["kind", "apiGroup", "name", "namespace"],
        "roleRef": ["apiGroup", "kind", "name"],
        "rules": ["verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs"],
        "names": ["plural", "singular", "shortNames", "kind", "listKind", "categories"],
        "acceptedNames": ["plural", "singular", "shortNames", "kind", "listKind", "categories"],
        "versions": ["name", "served", "storage", "deprecated", "deprecationWarning", "schema", "subresources",
                     "additionalPrinterColumns", "selectableFields"],
    ]
    private static let container = ["name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources",
                                    "resizePolicy", "restartPolicy", "volumeMounts", "volumeDevices", "livenessProbe",
                                    "readinessProbe", "startupProbe", "lifecycle", "terminationMessagePath",
                                    "terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty"]
    private static let specOrder = ["replicas", "selector", "template", "strategy", "minReadySeconds", "revisionHistoryLimit",
                                    "paused", "progressDeadlineSeconds",
                                    // pod spec
                                    "volumes", "initContainers", "containers", "restartPolicy", "terminationGracePeriodSeconds",
                                    "activeDeadlineSeconds", "dnsPolicy", "nodeSelector", "serviceAccountName", "serviceAccount",
                                    "automountServiceAccountToken", "nodeName", "hostNetwork", "securityContext",
                                    "imagePullSecrets", "hostname", "subdomain", "affinity", "schedulerName", "tolerations",
                                    "priorityClassName", "priority", "enableServiceLinks", "preemptionPolicy",
                                    // service spec
                                    "ports", "clusterIP", "clusterIPs", "type", "sessionAffinity", "ipFamilies",
                                    "ipFamilyPolicy", "internalTrafficPolicy",
                                    // lease spec
                                    "holderIdentity", "leaseDurationSeconds", "acquireTime", "renewTime", "leaseTransitions",
                                    // CRD spec
                                    "group", "names", "scope", "versions", "conversion", "preserveUnknownFields",
                                    "finalizers"]
    private static let statusOrder = ["observedGeneration", "phase", "conditions", "replicas", "updatedReplicas", "readyReplicas",
                                      "availableReplicas", "unavailableReplicas", "terminatingReplicas", "collisionCount",
                                      "message", "reason", "hostIP", "hostIPs", "podIP", "podIPs", "startTime",
                                      "containerStatuses", "qosClass", "acceptedNames", "storedVersions", "selector"]

    private static func preferredOrder(_ dict: [String: JSONValue], parentKey: String?, depth: Int) -> [String] {
        if dict["kind"] == "Status" { return statusRoot }
        switch parentKey {
        case nil, "items", "object":
            return objectRoot
        case "metadata":
            return objectMeta
        case "spec":
            return specOrder
        case "status":
            return statusOrder
        case let key?:
            return byParent[key] ?? []
        }
    }
}
