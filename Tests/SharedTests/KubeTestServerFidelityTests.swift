import Foundation
import KubeTestServer
import Shared
import Testing

/// Behaviour of the test API server that controllers depend on: garbage collection, server-side apply
/// field ownership, CRD schema defaults/validation, Deployment rollouts. Expected values come from
/// /work/shared/kube-api-samples (kube-apiserver v1.36) or from the upstream sources.
@Suite("KubeTestServer fidelity", .serialized)
struct KubeTestServerFidelityTests {
    /// A schema-less VLLMModel CRD (no pruning, no defaults); the schema tests install chill's real CRD.
    static let modelCRD = KubeTestServerTests.vllmCRD

    func withServer(clock: ClockMode = .system, _ body: (KubeTestServer) async throws -> Void) async throws {
        let server = try await KubeTestServer.start(clock: clock)
        do {
            _ = await server.handle("POST", "/api/v1/namespaces", json: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "samples"]])
            try await body(server)
        } catch {
            try? await server.shutdown()
            throw error
        }
        try await server.shutdown()
    }

    static let cms = "/api/v1/namespaces/samples/configmaps"

    func cm(_ name: String, owners: [JSONValue] = [], finalizers: [JSONValue] = [], data: JSONValue = ["k": "v"]) -> JSONValue {
        var meta: [String: JSONValue] = ["name": .string(name), "namespace": "samples"]
        if !owners.isEmpty { meta["ownerReferences"] = .array(owners) }
        if !finalizers.isEmpty { meta["finalizers"] = .array(finalizers) }
        return ["apiVersion": "v1", "kind": "ConfigMap", "metadata": .object(meta), "data": data]
    }

    func ref(_ owner: JSONValue, block: Bool? = nil) -> JSONValue {
        var r: [String: JSONValue] = ["apiVersion": owner["apiVersion"] ?? "v1", "kind": owner["kind"] ?? "ConfigMap",
                                      "name": owner[path: "metadata", "name"] ?? "", "uid": owner[path: "metadata", "uid"] ?? ""]
        if let block { r["blockOwnerDeletion"] = .bool(block) }
        return .object(r)
    }

    @discardableResult
    func post(_ s: KubeTestServer, _ path: String, _ obj: JSONValue) async throws -> JSONValue {
        let r = await s.handle("POST", path, json: obj)
        #expect(r.status == 201, "\(r.text)")
        return try #require(r.json)
    }

    func get(_ s: KubeTestServer, _ path: String) async -> JSONValue? {
        let r = await s.handle(method: "GET", path: path)
        return r.status == 200 ? r.json : nil
    }

    func jsonPatch(_ s: KubeTestServer, _ path: String, _ body: String) async -> KubeResponse {
        await s.handle(method: "PATCH", path: path, headers: [("Content-Type", "application/json-patch+json")], body: Data(body.utf8))
    }

    // MARK: - Garbage collection

    @Test func backgroundDeletionCollectsDependentsOfAClusterScopedOwner() async throws {
        try await withServer { s in
            _ = try await post(s, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", Self.modelCRD)
            let model = try await post(s, "/apis/chill.dev/v1alpha1/vllmmodels",
                                       ["apiVersion": "chill.dev/v1alpha1", "kind": "VLLMModel", "metadata": ["name": "qwen"], "spec": [:]])
            try await post(s, Self.cms, cm("plain", owners: [ref(model)]))
            try await post(s, Self.cms, cm("held", owners: [ref(model)], finalizers: ["example.com/hold"]))
            let dep: JSONValue = ["apiVersion": "apps/v1", "kind": "Deployment",
                                  "metadata": ["name": "qwen", "namespace": "samples", "ownerReferences": [ref(model, block: true)]],
                                  "spec": ["replicas": 1, "selector": ["matchLabels": ["app": "qwen"]],
                                           "template": ["metadata": ["labels": ["app": "qwen"]],
                                                        "spec": ["containers": [["name": "vllm", "image": "vllm/vllm-openai:v0.6.3"]]]]]]
            try await post(s, "/apis/apps/v1/namespaces/samples/deployments", dep)
            #expect(await s.store.list(.pods, namespace: "samples").count == 1)

            let del = await s.handle(method: "DELETE", path: "/apis/chill.dev/v1alpha1/vllmmodels/qwen")
            #expect(del.json?["status"] == "Success")
            #expect(await get(s, "\(Self.cms)/plain") == nil)
            #expect(await get(s, "/apis/apps/v1/namespaces/samples/deployments/qwen") == nil)
            #expect(await s.store.list(.pods, namespace: "samples").isEmpty)
            // A finalizer holds the dependent: deletionTimestamp set, still there until released.
            let held = try #require(await get(s, "\(Self.cms)/held"))
            #expect(held[path: "metadata", "deletionTimestamp"] != nil)
            #expect(held[path: "metadata", "deletionGracePeriodSeconds"] == 0)
            let release = await jsonPatch(s, "\(Self.cms)/held", #"[{"op":"remove","path":"/metadata/finalizers"}]"#)
            #expect(release.status == 200)
            #expect(await get(s, "\(Self.cms)/held") == nil)
        }
    }

    @Test func danglingAndWrongUIDOwnerReferencesAreCollected() async throws {
        try await withServer { s in
            let owner = try await post(s, Self.cms, cm("owner"))
            // Owner absent.
            try await post(s, Self.cms, cm("orphaned", owners: [["apiVersion": "v1", "kind": "ConfigMap", "name": "nobody",
                                                                   "uid": "00000000-0000-0000-0000-000000000001"]]))
            #expect(await get(s, "\(Self.cms)/orphaned") == nil)
            // Owner present, but another uid (deleted and recreated).
            var wrong = ref(owner)
            wrong["uid"] = "00000000-0000-0000-0000-000000000002"
            try await post(s, Self.cms, cm("wrong-uid", owners: [wrong]))
            #expect(await get(s, "\(Self.cms)/wrong-uid") == nil)
            // One live owner + one dangling reference: only the dangling reference is removed.
            try await post(s, Self.cms, cm("mixed", owners: [ref(owner), wrong]))
            let mixed = try #require(await get(s, "\(Self.cms)/mixed"))
            #expect(mixed[path: "metadata", "ownerReferences"]?.arrayValue?.map { $0["uid"] } == [owner[path: "metadata", "uid"]])
            // Kinds the server does not serve cannot be resolved: left alone.
            try await post(s, Self.cms, cm("unknown-kind", owners: [["apiVersion": "example.com/v1", "kind": "Widget", "name": "w",
                                                                       "uid": "00000000-0000-0000-0000-000000000003"]]))
            #expect(await get(s, "\(Self.cms)/unknown-kind") != nil)
        }
    }

    @Test func foregroundDeletionWaitsForBlockingDependents() async throws {
        try await withServer { s in
            let owner = try await post(s, Self.cms, cm("fg-owner"))
            try await post(s, Self.cms, cm("fg-held", owners: [ref(owner, block: true)], finalizers: ["example.com/hold"]))
            try await post(s, Self.cms, cm("fg-free", owners: [ref(owner, block: true)]))
            try await post(s, Self.cms, cm("fg-nonblocking", owners: [ref(owner)], finalizers: ["example.com/hold"]))

            let del = await s.handle(method: "DELETE", path: "\(Self.cms)/fg-owner?propagationPolicy=Foreground")
            #expect(del.status == 200)
            #expect(del.json?[path: "metadata", "finalizers"] == ["foregroundDeletion"])
            #expect(del.json?[path: "metadata", "deletionGracePeriodSeconds"] == 0)
            // Still there: fg-held blocks it.
            let waiting = try #require(await get(s, "\(Self.cms)/fg-owner"))
            #expect(waiting[path: "metadata", "deletionTimestamp"] != nil)
            #expect(await get(s, "\(Self.cms)/fg-free") == nil)
            #expect(await get(s, "\(Self.cms)/fg-held")?[path: "metadata", "deletionTimestamp"] != nil)
            #expect(await get(s, "\(Self.cms)/fg-nonblocking")?[path: "metadata", "deletionTimestamp"] != nil)

            _ = await jsonPatch(s, "\(Self.cms)/fg-held", #"[{"op":"remove","path":"/metadata/finalizers"}]"#)
            #expect(await get(s, "\(Self.cms)/fg-held") == nil)
            #expect(await get(s, "\(Self.cms)/fg-owner") == nil)
            // The non-blocking dependent did not hold the owner and is still held by its own finalizer.
            #expect(await get(s, "\(Self.cms)/fg-nonblocking") != nil)
        }
    }

    @Test func foregroundDeletionOfADeploymentCascadesThroughTheChain() async throws {
        try await withServer { s in
            let dep: JSONValue = ["apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "fg-demo", "namespace": "samples"],
                                  "spec": ["replicas": 1, "selector": ["matchLabels": ["app": "fg-demo"]],
                                           "template": ["metadata": ["labels": ["app": "fg-demo"]],
                                                        "spec": ["containers": [["name": "vllm", "image": "vllm/vllm-openai:v0.6.3"]]]]]]
            let created = try await post(s, "/apis/apps/v1/namespaces/samples/deployments", dep)
            #expect(created[path: "metadata", "generation"] == 1)
            let del = await s.handle(method: "DELETE", path: "/apis/apps/v1/namespaces/samples/deployments/fg-demo?propagationPolicy=Foreground")
            #expect(del.json?[path: "metadata", "generation"] == 2)  // generation + 1 with the deletionTimestamp (sample 11)
            #expect(await get(s, "/apis/apps/v1/namespaces/samples/deployments/fg-demo") == nil)
            #expect(await s.store.list(.pods, namespace: "samples").isEmpty)
        }
    }

    @Test func orphanDeletionRemovesOwnerReferences() async throws {
        try await withServer { s in
            let owner = try await post(s, Self.cms, cm("orphan-owner"))
            try await post(s, Self.cms, cm("orphan-dep", owners: [ref(owner)]))
            let del = await s.handle(method: "DELETE", path: "\(Self.cms)/orphan-owner?propagationPolicy=Orphan")
            #expect(del.json?[path: "metadata", "finalizers"] == ["orphan"])
            #expect(await get(s, "\(Self.cms)/orphan-owner") == nil)
            let dep = try #require(await get(s, "\(Self.cms)/orphan-dep"))
            #expect(dep[path: "metadata", "ownerReferences"] == nil)
        }
    }

    // MARK: - Server-side apply field ownership

    func apply(_ s: KubeTestServer, _ path: String, manager: String, force: Bool = false, _ body: JSONValue) async -> KubeResponse {
        await s.handle("PATCH", "\(path)?fieldManager=\(manager)\(force ? "&force=true" : "")", json: body,
                       contentType: "application/apply-patch+yaml")
    }

    func entry(_ obj: JSONValue?, _ manager: String, subresource: String? = nil) -> JSONValue? {
        obj?[path: "metadata", "managedFields"]?.arrayValue?.first {
            $0["manager"]?.stringValue == manager && $0["subresource"]?.stringValue == subresource
        }
    }

    @Test func applyConflictsForceAndSharedOwnership() async throws {
        try await withServer { s in
            let path = "\(Self.cms)/ssa"
            let a = await apply(s, path, manager: "mgr-a", cm("ssa", data: ["k1": "a", "k2": "a", "k3": "a"]))
            #expect(a.status == 201)
            let fields = entry(a.json, "mgr-a")
            #expect(fields?["operation"] == "Apply")
            #expect(fields?["fieldsType"] == "FieldsV1")
            #expect(fields?["fieldsV1"] == ["f:data": ["f:k1": [:], "f:k2": [:], "f:k3": [:]]])
            #expect(a.text.contains(#""managedFields":[{"manager":"mgr-a","operation":"Apply","apiVersion":"v1","time":""#))

            let one = await apply(s, path, manager: "mgr-b", cm("ssa", data: ["k1": "b"]))
            #expect(one.status == 409)
            #expect(one.text == #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Apply failed with 1 conflict: conflict with \"mgr-a\": .data.k1","reason":"Conflict","details":{"causes":[{"reason":"FieldManagerConflict","message":"conflict with \"mgr-a\"","field":".data.k1"}]},"code":409}"# + "\n")
            let two = await apply(s, path, manager: "mgr-b", cm("ssa", data: ["k1": "b", "k2": "b"]))
            #expect(two.json?["message"] == "Apply failed with 2 conflicts: conflicts with \"mgr-a\":\n- .data.k1\n- .data.k2")
            #expect(two.json?[path: "details", "causes"]?.arrayValue?.map { $0["field"] } == [".data.k1", ".data.k2"])

            // Same value: shared, no conflict.
            let shared = await apply(s, path, manager: "mgr-b", cm("ssa", data: ["k3": "a", "b1": "b"]))
            #expect(shared.status == 200)
            #expect(entry(shared.json, "mgr-b")?["fieldsV1"] == ["f:data": ["f:k3": [:], "f:b1": [:]]])
            #expect(entry(shared.json, "mgr-a")?["fieldsV1"] == ["f:data": ["f:k1": [:], "f:k2": [:], "f:k3": [:]]])

            // force takes ownership.
            let forced = await apply(s, path, manager: "mgr-b", force: true, cm("ssa", data: ["k1": "b", "k3": "a", "b1": "b"]))
            #expect(forced.status == 200)
            #expect(forced.json?[path: "data", "k1"] == "b")
            #expect(entry(forced.json, "mgr-a")?["fieldsV1"] == ["f:data": ["f:k2": [:], "f:k3": [:]]])

            // mgr-a stops applying k2 (removed: nobody else owns it) and k3 (kept: mgr-b still owns it).
            var noData = cm("ssa")
            noData["data"] = nil
            let dropped = await apply(s, path, manager: "mgr-a", noData)
            #expect(dropped.status == 200)
            #expect(dropped.json?["data"] == ["k1": "b", "k3": "a", "b1": "b"])
            #expect(entry(dropped.json, "mgr-a") == nil)

            // Non-apply writes: an Update manager (fieldManager, else the User-Agent's first segment) takes the
            // changed fields without conflicts.
            let merge = await s.handle(method: "PATCH", path: path, headers: [("Content-Type", "application/merge-patch+json"),
                                                                             ("User-Agent", "kubectl-patch/v1.36.2 (linux/amd64)")],
                                       body: Data(#"{"data":{"k1":"p","new":"p"}}"#.utf8))
            #expect(merge.status == 200)
            let upd = entry(merge.json, "kubectl-patch")
            #expect(upd?["operation"] == "Update")
            #expect(upd?["fieldsV1"] == ["f:data": ["f:k1": [:], "f:new": [:]]])
            #expect(entry(merge.json, "mgr-b")?["fieldsV1"] == ["f:data": ["f:k3": [:], "f:b1": [:]]])
            // …and an applier now conflicts with that Update manager.
            let vsUpdate = await apply(s, path, manager: "mgr-b", cm("ssa", data: ["k1": "b", "k3": "a", "b1": "b"]))
            #expect(vsUpdate.json?["message"] == #"Apply failed with 1 conflict: conflict with "kubectl-patch" using v1: .data.k1"#)
        }
    }

    func ssaDeployment(image: String, replicas: Int? = nil, env: [JSONValue]? = nil) -> JSONValue {
        var container: [String: JSONValue] = ["name": "vllm", "image": .string(image)]
        if let env { container["env"] = .array(env) }
        var spec: [String: JSONValue] = ["selector": ["matchLabels": ["app": "ssa-demo"]],
                                         "template": ["metadata": ["labels": ["app": "ssa-demo"]],
                                                      "spec": ["containers": [.object(container)]]]]
        if let replicas { spec["replicas"] = .int(replicas) }
        return ["apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "ssa-demo", "namespace": "samples"],
                "spec": .object(spec)]
    }

    @Test func applyOnDeploymentsTracksListsScaleAndStatus() async throws {
        try await withServer { s in
            let path = "/apis/apps/v1/namespaces/samples/deployments/ssa-demo"
            let created = await apply(s, path, manager: "kubectl-chill", ssaDeployment(image: "v1", replicas: 0,
                                                                                     env: [["name": "A", "value": "1"]]))
            #expect(created.status == 201)
            // The sample's format: keyed list items with ".", the atomic selector as a leaf.
            let env: JSONValue = [#"k:{"name":"A"}"#: [".": [:], "f:name": [:], "f:value": [:]]]
            let container: JSONValue = [".": [:], "f:name": [:], "f:image": [:], "f:env": env]
            let template: JSONValue = ["f:metadata": ["f:labels": ["f:app": [:]]],
                                       "f:spec": ["f:containers": [#"k:{"name":"vllm"}"#: container]]]
            let expected: JSONValue = ["f:spec": ["f:replicas": [:], "f:selector": [:], "f:template": template]]
            #expect(entry(created.json, "kubectl-chill")?["fieldsV1"] == expected)
            // The Deployment controller's status writes: subresource status.
            let live = await s.handle(method: "GET", path: path).json
            #expect(entry(live, "kube-controller-manager", subresource: "status")?["operation"] == "Update")

            let conflict = await apply(s, path, manager: "other", ssaDeployment(image: "v2"))
            #expect(conflict.json?["message"] == #"Apply failed with 1 conflict: conflict with "kubectl-chill": .spec.template.spec.containers[name="vllm"].image"#)

            // Scale subresource writes own .spec.replicas with subresource "scale".
            let scaled = await s.handle(method: "PATCH", path: "\(path)/scale?fieldManager=autoscaler",
                                        headers: [("Content-Type", "application/merge-patch+json")], body: Data(#"{"spec":{"replicas":2}}"#.utf8))
            #expect(scaled.status == 200)
            let afterScale = await s.handle(method: "GET", path: path).json
            #expect(entry(afterScale, "autoscaler", subresource: "scale")?["fieldsV1"] == ["f:spec": ["f:replicas": [:]]])
            #expect(entry(afterScale, "kubectl-chill")?[path: "fieldsV1", "f:spec", "f:replicas"] == nil)
            let replicasConflict = await apply(s, path, manager: "kubectl-chill", ssaDeployment(image: "v1", replicas: 1,
                                                                                               env: [["name": "A", "value": "1"]]))
            #expect(replicasConflict.status == 409)
            #expect(replicasConflict.json?["message"] == #"Apply failed with 1 conflict: conflict with "autoscaler" with subresource "scale" using apps/v1: .spec.replicas"#)

            // Dropping an env entry removes it from the object.
            let noEnv = await apply(s, path, manager: "kubectl-chill", ssaDeployment(image: "v1"))
            #expect(noEnv.status == 200)
            #expect(noEnv.json?[path: "spec", "template", "spec", "containers"]?.arrayValue?.first?["env"] == nil)
            #expect(noEnv.json?[path: "spec", "replicas"] == 2)

            // A status write through /status by a named manager.
            let st = await s.handle(method: "PATCH", path: "\(path)/status?fieldManager=tester",
                                    headers: [("Content-Type", "application/merge-patch+json")], body: Data(#"{"status":{"collisionCount":1}}"#.utf8))
            #expect(st.status == 200)
            #expect(entry(st.json, "tester", subresource: "status")?["fieldsV1"] == ["f:status": ["f:collisionCount": [:]]])
        }
    }

    // MARK: - CRD structural schema: defaults, validation, pruning

    static let models = "/apis/chill.dev/v1alpha1/vllmmodels"

    func model(_ name: String, _ spec: JSONValue) -> JSONValue {
        ["apiVersion": "chill.dev/v1alpha1", "kind": "VLLMModel", "metadata": ["name": .string(name)], "spec": spec]
    }

    @Test func customResourcesGetSchemaDefaultsValidationAndPruning() async throws {
        try await withServer { s in
            _ = try await post(s, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", InstallManifests.customResourceDefinition())
            let created = try await post(s, Self.models, model("qwen", ["modelName": "Qwen/Qwen2.5-0.5B-Instruct"]))
            #expect(created[path: "spec", "port"] == 8000)
            #expect(created[path: "spec", "image"] == .string(VLLMModelSpec.Defaults.image))
            #expect(created[path: "spec", "idleTimeout"] == nil, "no schema default: the install's idle timeout applies")

            let bad = await s.handle("POST", Self.models, json: model("bad", ["modelName": "m", "port": 0]))
            #expect(bad.status == 422)
            #expect(bad.json?["message"] == #"VLLMModel.chill.dev "bad" is invalid: [spec.port: Invalid value: 0: spec.port in body should be greater than or equal to 1, <nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation]"#)
            #expect(bad.json?[path: "details", "causes"]?.arrayValue?.first == ["reason": "FieldValueInvalid", "field": "spec.port",
                                                                                "message": "Invalid value: 0: spec.port in body should be greater than or equal to 1"])
            let wrongType = await s.handle("POST", Self.models, json: model("bad", ["modelName": "m", "minReplicas": "two"]))
            #expect(wrongType.json?[path: "details", "causes"]?.arrayValue?.first?["reason"] == "FieldValueTypeInvalid")
            let missing = await s.handle("POST", Self.models, json: model("bad", ["port": 8000]))
            #expect(missing.json?[path: "details", "causes"]?.arrayValue?.first == ["reason": "FieldValueRequired", "field": "spec.modelName",
                                                                                    "message": "Required value"])

            // Unknown fields: pruned with a Warning header by default, 400 with Strict (sample 04d).
            var extra = model("extra", ["modelName": "m", "foo": "x"])
            extra["extra"] = "y"
            let warned = await s.handle("POST", Self.models, json: extra)
            #expect(warned.status == 201)
            #expect(warned.headers.filter { $0.0 == "Warning" }.map(\.1) == [#"299 - "unknown field \"extra\"""#, #"299 - "unknown field \"spec.foo\"""#])
            #expect(warned.json?[path: "spec", "foo"] == nil)
            #expect(warned.json?["extra"] == nil)
            extra["metadata"] = ["name": "strict"]
            let strict = await s.handle("POST", "\(Self.models)?fieldValidation=Strict", json: extra)
            #expect(strict.status == 400)
            #expect(strict.json?["message"] == #"VLLMModel in version "v1alpha1" cannot be handled as a VLLMModel: strict decoding error: unknown field "extra", unknown field "spec.foo""#)
            let ignored = await s.handle("POST", "\(Self.models)?fieldValidation=Ignore", json: model("ignored", ["modelName": "m", "foo": "x"]))
            #expect(ignored.status == 201)
            #expect(!ignored.headers.contains { $0.0 == "Warning" })

            // Updates are checked too (merge patch into an invalid value; apply gets defaults).
            let patch = await s.handle(method: "PATCH", path: "\(Self.models)/qwen", headers: [("Content-Type", "application/merge-patch+json")],
                                       body: Data(#"{"spec":{"port":70000}}"#.utf8))
            #expect(patch.status == 422)
            let applied = await s.handle("PATCH", "\(Self.models)/applied?fieldManager=chill", json: model("applied", ["modelName": "m"]),
                                         contentType: "application/apply-patch+yaml")
            #expect(applied.status == 201)
            #expect(applied.json?[path: "spec", "port"] == 8000)
        }
    }

    // MARK: - Deployments, ReplicaSets and rollouts

    static let deployments = "/apis/apps/v1/namespaces/samples/deployments"

    func rolloutDeployment(image: String, replicas: Int) -> JSONValue {
        ["apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "roll", "namespace": "samples"],
         "spec": ["replicas": .int(replicas), "selector": ["matchLabels": ["app": "roll"]],
                  "template": ["metadata": ["labels": ["app": "roll"]], "spec": ["containers": [["name": "vllm", "image": .string(image)]]]]]]
    }

    func setImage(_ s: KubeTestServer, _ image: String) async -> KubeResponse {
        await s.handle(method: "PATCH", path: "\(Self.deployments)/roll", headers: [("Content-Type", "application/strategic-merge-patch+json")],
                       body: Data(#"{"spec":{"template":{"spec":{"containers":[{"name":"vllm","image":"\#(image)"}]}}}}"#.utf8))
    }

    @Test func deploymentsOwnReplicaSetsThatOwnPodsAndRollOnTemplateChanges() async throws {
        try await withServer { s in
            let dep = try await post(s, Self.deployments, rolloutDeployment(image: "vllm/vllm-openai:v0.6.3", replicas: 2))
            let rs1 = try #require(await s.store.list(.replicaSets, namespace: "samples").first)
            let rs1Name = try #require(rs1[path: "metadata", "name"]?.stringValue)
            let hash1 = try #require(rs1[path: "metadata", "labels", "pod-template-hash"]?.stringValue)
            #expect(rs1Name == "roll-\(hash1)")
            #expect(rs1[path: "metadata", "ownerReferences"]?.arrayValue?.first?["uid"] == dep[path: "metadata", "uid"])
            #expect(rs1[path: "metadata", "annotations", "deployment.kubernetes.io/revision"] == "1")
            #expect(rs1[path: "status", "readyReplicas"] == 2)
            #expect(await get(s, "/apis/apps/v1/namespaces/samples/replicasets/\(rs1Name)") != nil)
            let pods = await s.store.list(.pods, namespace: "samples")
            #expect(pods.count == 2)
            #expect(pods.allSatisfy { $0[path: "metadata", "ownerReferences"]?.arrayValue?.first?["uid"] == rs1[path: "metadata", "uid"] })
            #expect(pods.allSatisfy { $0[path: "metadata", "labels", "pod-template-hash"]?.stringValue == hash1 })

            // A template change: a new ReplicaSet (revision 2); with Pods Ready at once the roll completes.
            #expect(await setImage(s, "vllm/vllm-openai:v0.6.4").status == 200)
            let rolled = try #require(await get(s, "\(Self.deployments)/roll"))
            #expect(rolled[path: "metadata", "annotations", "deployment.kubernetes.io/revision"] == "2")
            #expect(rolled[path: "status", "observedGeneration"] == 2)
            #expect(rolled[path: "status", "updatedReplicas"] == 2)
            #expect(rolled[path: "status", "availableReplicas"] == 2)
            let sets = await s.store.list(.replicaSets, namespace: "samples")
            #expect(sets.count == 2)
            #expect(sets.first { $0[path: "metadata", "name"]?.stringValue == rs1Name }?[path: "spec", "replicas"] == 0)
            let newPods = await s.store.list(.pods, namespace: "samples")
            #expect(newPods.count == 2)
            #expect(newPods.allSatisfy { $0[path: "metadata", "labels", "pod-template-hash"]?.stringValue != hash1 })

            // Pods that do not become Ready hold the roll: maxSurge 1, maxUnavailable 0 for 2 replicas.
            s.simulator.autoReady = false
            _ = await setImage(s, "vllm/vllm-openai:v0.7.0")
            let holding = try #require(await get(s, "\(Self.deployments)/roll"))
            #expect(await s.store.list(.pods, namespace: "samples").count == 3)
            #expect(holding[path: "status", "updatedReplicas"] == 1)
            #expect(holding[path: "status", "conditions"]?.arrayValue?.first { $0["type"] == "Available" }?["status"] == "True")
            #expect(holding[path: "status", "conditions"]?.arrayValue?.first { $0["type"] == "Progressing" }?["reason"] == "ReplicaSetUpdated")
            for _ in 0..<4 { await s.markPodsReady(namespace: "samples", deployment: "roll") }
            let done = try #require(await get(s, "\(Self.deployments)/roll"))
            #expect(done[path: "metadata", "annotations", "deployment.kubernetes.io/revision"] == "3")
            #expect(done[path: "status", "updatedReplicas"] == 2)
            #expect(done[path: "status", "replicas"] == 2)
            #expect(done[path: "status", "conditions"]?.arrayValue?.first { $0["type"] == "Progressing" }?["reason"] == "NewReplicaSetAvailable")

            // Deleting the Deployment: the garbage collector removes its ReplicaSets and their Pods.
            _ = await s.handle(method: "DELETE", path: "\(Self.deployments)/roll")
            #expect(await s.store.list(.replicaSets, namespace: "samples").isEmpty)
            #expect(await s.store.list(.pods, namespace: "samples").isEmpty)
        }
    }

    @Test func availableIsFalseUntilEnoughPodsAreReady() async throws {
        try await withServer { s in
            s.simulator.autoReady = false
            _ = try await post(s, Self.deployments, rolloutDeployment(image: "vllm/vllm-openai:v0.6.3", replicas: 1))
            let dep = try #require(await get(s, "\(Self.deployments)/roll"))
            let available = dep[path: "status", "conditions"]?.arrayValue?.first { $0["type"] == "Available" }
            #expect(available?["status"] == "False")
            #expect(available?["reason"] == "MinimumReplicasUnavailable")
            #expect(dep[path: "status", "unavailableReplicas"] == 1)
            await s.markPodsReady(namespace: "samples", deployment: "roll")
            let ready = try #require(await get(s, "\(Self.deployments)/roll"))
            #expect(ready[path: "status", "conditions"]?.arrayValue?.first { $0["type"] == "Available" }?["reason"] == "MinimumReplicasAvailable")
        }
    }

    // MARK: - Typed decoding of built-ins

    @Test func quantitiesAreStoredInCanonicalForm() async throws {
        try await withServer { s in
            var dep = rolloutDeployment(image: "vllm/vllm-openai:v0.6.3", replicas: 0)
            dep["spec"]?["template"]?["spec"]?["containers"] = [["name": "vllm", "image": "vllm/vllm-openai:v0.6.3",
                                                                    "resources": ["requests": ["cpu": "0.5", "memory": "1024Mi"],
                                                                                  "limits": ["cpu": "1000m", "memory": "1536Mi", "nvidia.com/gpu": "1"]]]]
            let created = try await post(s, Self.deployments, dep)
            let r = created[path: "spec", "template", "spec", "containers"]?.arrayValue?.first?["resources"]
            #expect(r?["requests"] == ["cpu": "500m", "memory": "1Gi"])
            #expect(r?["limits"] == ["cpu": "1", "memory": "1536Mi", "nvidia.com/gpu": "1"])
            let pvc: JSONValue = ["apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": ["name": "cache", "namespace": "samples"],
                                  "spec": ["accessModes": ["ReadWriteOnce"], "resources": ["requests": ["storage": "2048Mi"]]]]
            let claim = try await post(s, "/api/v1/namespaces/samples/persistentvolumeclaims", pvc)
            #expect(claim[path: "spec", "resources", "requests", "storage"] == "2Gi")
        }
    }

    @Test func microTimesNeedSixDigitsAndLeasesNeedAResourceVersion() async throws {
        try await withServer { s in
            let leases = "/apis/coordination.k8s.io/v1/namespaces/samples/leases"
            func lease(_ t: String) -> JSONValue {
                ["apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": ["name": "chill-leader"],
                 "spec": ["holderIdentity": "chill-0", "leaseDurationSeconds": 15, "acquireTime": .string(t), "renewTime": .string(t)]]
            }
            let millis = await s.handle("POST", leases, json: lease("2026-11-22T23:18:59.511Z"))
            #expect(millis.status == 400)
            #expect(millis.json?["message"] == #"Lease in version "v1" cannot be handled as a Lease: parsing time "2026-11-22T23:18:59.511Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse ".511Z" as ".000000""#)
            let whole = await s.handle("POST", leases, json: lease("2026-01-02T03:04:05Z"))
            #expect(whole.json?["message"] == #"Lease in version "v1" cannot be handled as a Lease: parsing time "2026-01-02T03:04:05Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "Z" as ".000000""#)
            let ok = await s.handle("POST", leases, json: lease("2026-11-22T23:19:00.006558Z"))
            #expect(ok.status == 201)
            let noRV = await s.handle("PUT", "\(leases)/chill-leader", json: lease("2026-11-22T23:19:01.396879Z"))
            #expect(noRV.status == 422)
            #expect(noRV.json?["message"] == #"Lease.coordination.k8s.io "chill-leader" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"#)
            let event: JSONValue = ["apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": ["name": "e1"],
                                    "eventTime": "2026-11-22T23:19:00Z", "reportingController": "chill", "reportingInstance": "chill-0",
                                    "action": "Wake", "reason": "Waking", "type": "Normal"]
            #expect(await s.handle("POST", "/apis/events.k8s.io/v1/namespaces/samples/events", json: event).status == 400)
        }
    }

    @Test func healthEndpointsArePublic() async throws {
        try await withServer { s in
            for path in ["/healthz", "/readyz", "/livez"] {
                let r = await s.handle(method: "GET", path: path, user: nil)
                #expect(r.status == 200)
                #expect(r.text == "ok")
            }
        }
    }

    // MARK: - Events: one store, two APIs

    @Test func coreAndEventsV1EventsAreOneStore() async throws {
        try await withServer { s in
            let core: JSONValue = ["apiVersion": "v1", "kind": "Event", "metadata": ["name": "core-1", "namespace": "samples"],
                                   "involvedObject": ["kind": "Pod", "namespace": "samples", "name": "p1"], "reason": "Started",
                                   "message": "Started container", "source": ["component": "kubelet"], "type": "Normal", "count": 1]
            _ = try await post(s, "/api/v1/namespaces/samples/events", core)
            let v1 = try #require(await get(s, "/apis/events.k8s.io/v1/namespaces/samples/events/core-1"))
            #expect(v1["apiVersion"] == "events.k8s.io/v1")
            #expect(v1[path: "regarding", "name"] == "p1")
            #expect(v1["note"] == "Started container")
            #expect(v1[path: "deprecatedSource", "component"] == "kubelet")
            #expect(v1["deprecatedCount"] == 1)
            #expect(v1["involvedObject"] == nil && v1["message"] == nil)

            let event: JSONValue = ["apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": ["name": "v1-1", "namespace": "samples"],
                                    "eventTime": "2026-11-22T23:19:00.006558Z", "reportingController": "chill.dev/controller",
                                    "reportingInstance": "chill-0", "action": "Wake", "reason": "Waking", "type": "Normal",
                                    "regarding": ["kind": "VLLMModel", "apiVersion": "chill.dev/v1alpha1", "name": "qwen"], "note": "waking qwen"]
            let created = try await post(s, "/apis/events.k8s.io/v1/namespaces/samples/events", event)
            #expect(created["note"] == "waking qwen")
            let asCore = try #require(await get(s, "/api/v1/namespaces/samples/events/v1-1"))
            #expect(asCore[path: "involvedObject", "name"] == "qwen")
            #expect(asCore["message"] == "waking qwen")
            #expect(asCore["reportingComponent"] == "chill.dev/controller")
            // Field selectors in each API's own terms.
            let byRegarding = await get(s, "/apis/events.k8s.io/v1/namespaces/samples/events?fieldSelector=regarding.name%3Dqwen")
            #expect(byRegarding?["items"]?.arrayValue?.map { $0[path: "metadata", "name"] } == ["v1-1"])
            let byInvolved = await get(s, "/api/v1/namespaces/samples/events?fieldSelector=involvedObject.name%3Dp1")
            #expect(byInvolved?["items"]?.arrayValue?.map { $0[path: "metadata", "name"] } == ["core-1"])
            // A merge patch through events.k8s.io/v1 in its own field names.
            let patched = await s.handle(method: "PATCH", path: "/apis/events.k8s.io/v1/namespaces/samples/events/v1-1",
                                         headers: [("Content-Type", "application/merge-patch+json")], body: Data(#"{"note":"woke"}"#.utf8))
            #expect(patched.json?["note"] == "woke")
            #expect(await get(s, "/api/v1/namespaces/samples/events/v1-1")?["message"] == "woke")
        }
    }
}
