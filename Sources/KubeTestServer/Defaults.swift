import Foundation
import Shared

/// The defaulting kube-apiserver applies to built-in types (the commonly visible subset).
enum Defaults {
    static func apply(_ rt: ResourceType, _ object: JSONValue) -> JSONValue {
        var o = object
        switch rt {
        case .namespaces:
            let name = o["metadata"]?["name"]?.stringValue ?? ""
            o[keyPath: "metadata", "labels", "kubernetes.io/metadata.name"] = .string(name)
            if o["spec"] == nil { o["spec"] = ["finalizers": ["kubernetes"]] }
            if o["status"] == nil { o["status"] = ["phase": "Active"] }
        case .deployments:
            var spec = o["spec"]?.objectValue ?? [:]
            if spec["replicas"] == nil { spec["replicas"] = 1 }
            if spec["strategy"] == nil {
                spec["strategy"] = ["type": "RollingUpdate", "rollingUpdate": ["maxUnavailable": "25%", "maxSurge": "25%"]]
            }
            if spec["revisionHistoryLimit"] == nil { spec["revisionHistoryLimit"] = 10 }
            if spec["progressDeadlineSeconds"] == nil { spec["progressDeadlineSeconds"] = 600 }
            if let podSpec = spec["template"]?["spec"] {
                spec["template"]?["spec"] = podSpecDefaults(podSpec)
            }
            o["spec"] = .object(spec)
            if o["status"] == nil { o["status"] = .object([:]) }
        case .pods:
            if let spec = o["spec"] {
                var s = podSpecDefaults(spec)
                if s["serviceAccountName"] == nil { s["serviceAccountName"] = "default" }
                if s["serviceAccount"] == nil { s["serviceAccount"] = s["serviceAccountName"] }
                if s["priority"] == nil { s["priority"] = 0 }
                if s["enableServiceLinks"] == nil { s["enableServiceLinks"] = true }
                if s["preemptionPolicy"] == nil { s["preemptionPolicy"] = "PreemptLowerPriority" }
                o["spec"] = s
            }
            if o["status"] == nil { o["status"] = ["phase": "Pending", "qosClass": "BestEffort"] }
        case .services:
            var spec = o["spec"]?.objectValue ?? [:]
            if spec["type"] == nil { spec["type"] = "ClusterIP" }
            if spec["sessionAffinity"] == nil { spec["sessionAffinity"] = "None" }
            if spec["clusterIP"] == nil {
                let ip = "10.96.\(Int.random(in: 1...254)).\(Int.random(in: 1...254))"
                spec["clusterIP"] = .string(ip)
                spec["clusterIPs"] = [.string(ip)]
            }
            if spec["ipFamilies"] == nil { spec["ipFamilies"] = ["IPv4"] }
            if spec["ipFamilyPolicy"] == nil { spec["ipFamilyPolicy"] = "SingleStack" }
            if spec["internalTrafficPolicy"] == nil { spec["internalTrafficPolicy"] = "Cluster" }
            if let ports = spec["ports"]?.arrayValue {
                spec["ports"] = .array(ports.map { p in
                    var q = p
                    if q["protocol"] == nil { q["protocol"] = "TCP" }
                    if q["targetPort"] == nil { q["targetPort"] = q["port"] }
                    return q
                })
            }
            o["spec"] = .object(spec)
            if o["status"] == nil { o["status"] = ["loadBalancer": .object([:])] }
        case .secrets:
            if o["type"] == nil { o["type"] = "Opaque" }
            if let stringData = o["stringData"]?.objectValue {
                var data = o["data"]?.objectValue ?? [:]
                for (k, v) in stringData { data[k] = .string(Data((v.stringValue ?? "").utf8).base64EncodedString()) }
                o["data"] = .object(data)
                o["stringData"] = nil
            }
        case .customResourceDefinitions:
            if o["spec"]?["conversion"] == nil { o[keyPath: "spec", "conversion"] = ["strategy": "None"] }
            if o["status"] == nil {
                let storage = (o["spec"]?["versions"]?.arrayValue ?? []).first { $0["storage"]?.boolValue == true }
                o["status"] = ["conditions": .null, "acceptedNames": ["plural": "", "kind": ""],
                               "storedVersions": .array([storage?["name"] ?? .null].filter { $0 != .null })]
            }
        default:
            break
        }
        return o
    }

    static func podSpecDefaults(_ spec: JSONValue) -> JSONValue {
        var s = spec
        if s["restartPolicy"] == nil { s["restartPolicy"] = "Always" }
        if s["terminationGracePeriodSeconds"] == nil { s["terminationGracePeriodSeconds"] = 30 }
        if s["dnsPolicy"] == nil { s["dnsPolicy"] = "ClusterFirst" }
        if s["securityContext"] == nil { s["securityContext"] = .object([:]) }
        if s["schedulerName"] == nil { s["schedulerName"] = "default-scheduler" }
        for key in ["containers", "initContainers"] {
            guard let containers = s[key]?.arrayValue else { continue }
            s[key] = .array(containers.map(containerDefaults))
        }
        return s
    }

    static func containerDefaults(_ c: JSONValue) -> JSONValue {
        var c = c
        if c["terminationMessagePath"] == nil { c["terminationMessagePath"] = "/dev/termination-log" }
        if c["terminationMessagePolicy"] == nil { c["terminationMessagePolicy"] = "File" }
        if c["imagePullPolicy"] == nil {
            let image = c["image"]?.stringValue ?? ""
            let tag = image.split(separator: "/").last.flatMap { $0.split(separator: ":").dropFirst().first }
            c["imagePullPolicy"] = (tag == nil || tag == "latest") && !image.contains("@") ? "Always" : "IfNotPresent"
        }
        if let ports = c["ports"]?.arrayValue {
            c["ports"] = .array(ports.map { p in var q = p; if q["protocol"] == nil { q["protocol"] = "TCP" }; return q })
        }
        for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
            guard var pr = c[probe], pr.objectValue != nil else { continue }
            if pr["httpGet"] != nil, pr["httpGet"]?["scheme"] == nil { pr[keyPath: "httpGet", "scheme"] = "HTTP" }
            if pr["timeoutSeconds"] == nil { pr["timeoutSeconds"] = 1 }
            if pr["periodSeconds"] == nil { pr["periodSeconds"] = 10 }
            if pr["successThreshold"] == nil { pr["successThreshold"] = 1 }
            if pr["failureThreshold"] == nil { pr["failureThreshold"] = 3 }
            c[probe] = pr
        }
        return c
    }
}

/// The little validation kube-apiserver does that tests are likely to hit.
enum Validation {
    static let subdomainMessage = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    static let labelMessage = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"

    static func name(_ name: String, for rt: ResourceType) -> Cause? {
        let isLabel = rt == .namespaces
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-" + (isLabel ? "" : "."))
        let alnum = Set("abcdefghijklmnopqrstuvwxyz0123456789")
        let ok = !name.isEmpty && name.allSatisfy { allowed.contains($0) } && alnum.contains(name.first!)
            && alnum.contains(name.last!) && !name.contains("..") && !name.contains(".-") && !name.contains("-.")
            && name.count <= (isLabel ? 63 : 253)
        if ok { return nil }
        return .invalid("metadata.name", "\(KubeJSON.string(.string(name))): \(isLabel ? labelMessage : subdomainMessage)")
    }

    static func builtin(_ rt: ResourceType, _ o: JSONValue) -> [Cause] {
        guard rt == .deployments else { return [] }
        var causes: [Cause] = []
        let spec = o["spec"]
        if let r = spec?["replicas"]?.intValue, r < 0 {
            causes.append(.invalid("spec.replicas", "\(r): must be greater than or equal to 0"))
        }
        let selector = spec?["selector"]
        if selector == nil || selector == .object([:]) { causes.append(.required("spec.selector")) }
        let labels = spec?["template"]?["metadata"]?["labels"]
        let sel = LabelSelector(labelSelectorObject: selector)
        if selector != nil, sel.isEmpty || !sel.matches(o["spec"]?["template"].map { JSONValue.object(["metadata": $0["metadata"] ?? .null]) }?.labels ?? [:]) {
            causes.append(.invalid("spec.template.metadata.labels",
                                   "\(KubeJSON.string(labels ?? .null)): `selector` does not match template `labels`"))
        } else if selector == nil {
            causes.append(.invalid("spec.template.metadata.labels", "null: `selector` does not match template `labels`"))
        }
        let containers = spec?["template"]?["spec"]?["containers"]?.arrayValue ?? []
        if containers.isEmpty { causes.append(.required("spec.template.spec.containers")) }
        for (i, c) in containers.enumerated() where (c["image"]?.stringValue ?? "").isEmpty {
            causes.append(.required("spec.template.spec.containers[\(i)].image"))
        }
        return causes
    }
}
