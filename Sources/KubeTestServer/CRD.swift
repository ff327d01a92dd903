import Foundation
import Shared

extension KubeStore {
    /// Controllers that are part of the API server itself: CRD establishment, namespace cleanup.
    func builtinReconcile(_ change: KubeChange) {
        guard change.resource.storageKey == ResourceType.customResourceDefinitions.storageKey else { return }
        let crd = change.object
        let group = crd["spec"]?["group"]?.stringValue ?? ""
        let plural = crd["spec"]?["names"]?["plural"]?.stringValue ?? ""
        if change.type == .deleted {
            if let rt = storageTypes["\(group)/\(plural)"] {
                for obj in objects[rt.storageKey]?.values.map({ $0 }) ?? [] { commit(rt, obj, type: .deleted) }
                objects[rt.storageKey] = nil
            }
            unregister(group: group, plural: plural)
            return
        }
        registerCRD(crd)
        // Like the apiextensions controllers: NamesAccepted + Established shortly after create.
        let conditions = crd["status"]?["conditions"]?.arrayValue ?? []
        if !conditions.contains(where: { $0["type"] == "Established" }) {
            var o = crd
            let ts = JSONValue.string(timestamp())
            o[keyPath: "status", "conditions"] = [
                ["type": "NamesAccepted", "status": "True", "lastTransitionTime": ts, "reason": "NoConflicts",
                 "message": "no conflicts found"],
                ["type": "Established", "status": "True", "lastTransitionTime": ts, "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted"],
            ]
            o[keyPath: "status", "acceptedNames"] = crd["spec"]?["names"] ?? .object([:])
            update(.customResourceDefinitions, o)
        }
    }

    /// Registers the served versions of a CRD object as resource types.
    func registerCRD(_ crd: JSONValue) {
        guard let spec = crd["spec"], let group = spec["group"]?.stringValue,
              let plural = spec["names"]?["plural"]?.stringValue, let kind = spec["names"]?["kind"]?.stringValue else { return }
        let namespaced = spec["scope"]?.stringValue != "Cluster"
        let versions = spec["versions"]?.arrayValue ?? []
        // Storage is keyed by group/plural; register the storage version first so it is the stored form.
        let ordered = versions.sorted { ($0["storage"]?.boolValue ?? false) && !($1["storage"]?.boolValue ?? false) }
        unregister(group: group, plural: plural)
        for v in ordered where v["served"]?.boolValue ?? true {
            guard let name = v["name"]?.stringValue else { continue }
            crdSchemas["\(group)/\(name)/\(plural)"] = v["schema"]?["openAPIV3Schema"]
            var scale: ResourceType.Scale?
            if let s = v["subresources"]?["scale"] {
                func path(_ key: String) -> String? { s[key]?.stringValue.map { $0.hasPrefix(".") ? String($0.dropFirst()) : $0 } }
                scale = ResourceType.Scale(specReplicasPath: path("specReplicasPath") ?? "spec.replicas",
                                           statusReplicasPath: path("statusReplicasPath") ?? "status.replicas",
                                           labelSelectorPath: path("labelSelectorPath"))
            }
            let fields = (v["selectableFields"]?.arrayValue ?? []).compactMap { $0["jsonPath"]?.stringValue }
                .map { $0.hasPrefix(".") ? String($0.dropFirst()) : $0 }
            registerSync(ResourceType(group: group, version: name, kind: kind, plural: plural, namespaced: namespaced,
                                      hasStatus: v["subresources"]?["status"] != nil, scale: scale, isCustom: true,
                                      extraFieldSelectors: fields))
        }
    }

    // MARK: - Discovery

    func discovery(_ route: Route) throws(APIError) -> KubeResponse {
        switch route {
        case .version:
            let v: JSONValue = ["major": "1", "minor": "36", "emulationMajor": "1", "emulationMinor": "36",
                                "minCompatibilityMajor": "1", "minCompatibilityMinor": "35", "gitVersion": "v1.36.2",
                                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                                "buildDate": "2026-11-22T00:00:00Z", "goVersion": "go1.27.3", "compiler": "gc",
                                "platform": "linux/amd64"]
            let order = ["major", "minor", "emulationMajor", "emulationMinor", "minCompatibilityMajor", "minCompatibilityMinor",
                         "gitVersion", "gitCommit", "gitTreeState", "buildDate", "goVersion", "compiler", "platform"]
            let body = "{\n" + order.map { "  \"\($0)\": \"\(v[$0]?.stringValue ?? "")\"" }.joined(separator: ",\n") + "\n}"
            return KubeResponse(status: 200, headers: [("Content-Type", "application/json")], body: Data(body.utf8))
        case .discoveryRoot(legacy: true):
            return .json(200, ["kind": "APIVersions", "versions": ["v1"],
                               "serverAddressByClientCIDRs": [["clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"]]])
        case .discoveryRoot(legacy: false):
            let groups = Set(types.values.map(\.group)).filter { !$0.isEmpty }.sorted()
            return .json(200, ["kind": "APIGroupList", "apiVersion": "v1", "groups": .array(groups.map(apiGroup))])
        case .discoveryGroup(let g):
            var o = apiGroup(g)
            o["kind"] = "APIGroup"
            o["apiVersion"] = "v1"
            return .json(200, o)
        case .discoveryGroupVersion(let g, let v):
            var resources: [JSONValue] = []
            for rt in types.values.filter({ $0.group == g && $0.version == v }).sorted(by: { $0.plural < $1.plural }) {
                resources.append(["name": .string(rt.plural), "singularName": .string(rt.kind.lowercased()),
                                  "namespaced": .bool(rt.namespaced), "kind": .string(rt.kind),
                                  "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]])
                if rt.hasStatus {
                    resources.append(["name": .string(rt.plural + "/status"), "singularName": "", "namespaced": .bool(rt.namespaced),
                                      "kind": .string(rt.kind), "verbs": ["get", "patch", "update"]])
                }
                if rt.scale != nil {
                    resources.append(["name": .string(rt.plural + "/scale"), "singularName": "", "namespaced": .bool(rt.namespaced),
                                      "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]])
                }
            }
            return .json(200, ["kind": "APIResourceList", "apiVersion": "v1",
                               "groupVersion": .string(g.isEmpty ? v : "\(g)/\(v)"), "resources": .array(resources)])
        case .health:
            return KubeResponse(status: 200, headers: [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")],
                                body: Data("ok".utf8))
        case .resource, .notFound:
            throw APIError.pageNotFound
        }
    }

    private func apiGroup(_ g: String) -> JSONValue {
        let versions = Set(types.values.filter { $0.group == g }.map(\.version)).sorted()
        let gvs: [JSONValue] = versions.map { ["groupVersion": .string("\(g)/\($0)"), "version": .string($0)] }
        return ["name": .string(g), "versions": .array(gvs), "preferredVersion": gvs.first ?? .null]
    }
}
