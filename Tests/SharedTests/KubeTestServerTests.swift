import Foundation
import KubeTestServer
import Shared
import Synchronization
import Testing

/// Tests for the in-process kube-apiserver look-alike. Most go through `handle` (the same code path the
/// HTTPS handler uses); a few exercise real TLS with the curl CLI.
@Suite("KubeTestServer", .serialized)
struct KubeTestServerTests {
    static let vllmCRD: JSONValue = [
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": ["name": "vllmmodels.chill.dev"],
        "spec": ["group": "chill.dev", "scope": "Cluster",
                 "names": ["plural": "vllmmodels", "singular": "vllmmodel", "kind": "VLLMModel", "listKind": "VLLMModelList"],
                 "versions": [["name": "v1alpha1", "served": true, "storage": true, "subresources": ["status": [:]],
                               "schema": ["openAPIV3Schema": ["type": "object"]]]]],
    ]

    func withServer(clock: ClockMode = .system, _ body: (KubeTestServer) async throws -> Void) async throws {
        let server = try await KubeTestServer.start(clock: clock)
        do {
            try await body(server)
        } catch {
            try? await server.shutdown()
            throw error
        }
        try await server.shutdown()
    }

    func setupSamples(_ s: KubeTestServer, crd: Bool = false) async {
        _ = await s.handle("POST", "/api/v1/namespaces", json: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "samples"]])
        if crd {
            let r = await s.handle("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json: Self.vllmCRD)
            #expect(r.status == 201)
        }
    }

    func cm(_ name: String, labels: JSONValue = [:], data: JSONValue = ["k": "v1"]) -> JSONValue {
        ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": .string(name), "namespace": "samples", "labels": labels], "data": data]
    }

    func raw(_ s: KubeTestServer, _ method: String, _ path: String, _ body: String, contentType: String = "application/json") async -> KubeResponse {
        await s.handle(method: method, path: path, headers: [("Content-Type", contentType)], body: Data(body.utf8))
    }

    // MARK: - CRUD and Status bodies

    @Test func createGetAndStatusBodiesMatchTheRealServer() async throws {
        try await withServer { s in
            await setupSamples(s)
            let created = await s.handle("POST", "/api/v1/namespaces/samples/configmaps", json: cm("dup"))
            #expect(created.status == 201)
            let obj = try #require(created.json)
            #expect(obj[path: "metadata", "uid"]?.stringValue?.count == 36)
            #expect(obj[path: "metadata", "resourceVersion"]?.stringValue != nil)
            #expect(obj[path: "metadata", "generation"] == nil)
            #expect(created.text.hasPrefix(#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"dup","namespace":"samples","uid":"#))
            #expect(created.text.hasSuffix("}\n"))

            let missing = await s.handle(method: "GET", path: "/api/v1/namespaces/samples/configmaps/does-not-exist")
            #expect(missing.status == 404)
            #expect(missing.text == #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"configmaps \"does-not-exist\" not found","reason":"NotFound","details":{"name":"does-not-exist","kind":"configmaps"},"code":404}"# + "\n")
            #expect(missing.body.count == 208)  // the real server sent 208 bytes

            let dMissing = await s.handle(method: "GET", path: "/apis/apps/v1/namespaces/samples/deployments/does-not-exist")
            #expect(dMissing.body.count == 230)
            #expect(dMissing.text.contains(#""details":{"name":"does-not-exist","group":"apps","kind":"deployments"}"#))

            let dup = await s.handle("POST", "/api/v1/namespaces/samples/configmaps", json: cm("dup"))
            #expect(dup.status == 409)
            #expect(dup.body.count == 196)
            #expect(dup.text.contains(#""message":"configmaps \"dup\" already exists","reason":"AlreadyExists""#))

            let wrongNS = await raw(s, "POST", "/api/v1/namespaces/samples/configmaps",
                                    #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"wrongns","namespace":"default"}}"#)
            #expect(wrongNS.status == 400)
            #expect(wrongNS.body.count == 200)

            let noName = await raw(s, "POST", "/api/v1/namespaces/samples/configmaps", #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}"#)
            #expect(noName.status == 422)
            #expect(noName.text == #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"ConfigMap \"\" is invalid: metadata.name: Required value: name or generateName is required","reason":"Invalid","details":{"kind":"ConfigMap","causes":[{"reason":"FieldValueRequired","message":"Required value: name or generateName is required","field":"metadata.name"}]},"code":422}"# + "\n")
            #expect(noName.body.count == 361)

            let badName = await raw(s, "POST", "/api/v1/namespaces/samples/configmaps", #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#)
            #expect(badName.status == 422)
            #expect(badName.body.count == 880)

            let gen = await raw(s, "POST", "/api/v1/namespaces/samples/configmaps", #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"gen-"}}"#)
            #expect(gen.status == 201)
            #expect(gen.json?[path: "metadata", "name"]?.stringValue?.count == 9)

            let notJSON = await raw(s, "POST", "/api/v1/namespaces/samples/configmaps", #"{"apiVersion":"v1", this is not json"#)
            #expect(notJSON.status == 400)
            #expect(notJSON.json?["reason"] == "BadRequest")

            let unknown = await s.handle(method: "GET", path: "/apis/chill.dev/v1alpha1/nosuchresources")
            #expect(unknown.status == 404)
            #expect(unknown.text == "404 page not found\n")
            #expect(unknown.header("Content-Type") == "text/plain; charset=utf-8")

            let noNamespace = await raw(s, "POST", "/api/v1/namespaces/nope/configmaps", #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#)
            #expect(noNamespace.status == 404)
            #expect(noNamespace.json?["message"] == #"namespaces "nope" not found"#)
        }
    }

    @Test func updateConflictsAndResourceVersionRules() async throws {
        try await withServer { s in
            await setupSamples(s, crd: true)
            let created = try #require(await s.handle("POST", "/api/v1/namespaces/samples/configmaps", json: cm("dup")).json)
            let rv = try #require(created[path: "metadata", "resourceVersion"]?.stringValue)
            var v2 = cm("dup", data: ["k": "v2"])
            v2["metadata"] = ["name": "dup", "namespace": "samples", "resourceVersion": .string(rv)]
            let ok = await s.handle("PUT", "/api/v1/namespaces/samples/configmaps/dup", json: v2)
            #expect(ok.status == 200)
            #expect(ok.json?[path: "metadata", "resourceVersion"]?.stringValue != rv)

            let stale = await s.handle("PUT", "/api/v1/namespaces/samples/configmaps/dup", json: v2)
            #expect(stale.status == 409)
            #expect(stale.text == #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Operation cannot be fulfilled on configmaps \"dup\": the object has been modified; please apply your changes to the latest version and try again","reason":"Conflict","details":{"name":"dup","kind":"configmaps"},"code":409}"# + "\n")

            let unconditional = await s.handle("PUT", "/api/v1/namespaces/samples/configmaps/dup", json: cm("dup", data: ["k": "v4"]))
            #expect(unconditional.status == 200)
            #expect(unconditional.json?[path: "data", "k"] == "v4")

            let missing = await s.handle("PUT", "/api/v1/namespaces/samples/configmaps/does-not-exist-yet", json: cm("does-not-exist-yet"))
            #expect(missing.status == 404)
            let mismatch = await s.handle("PUT", "/api/v1/namespaces/samples/configmaps/other-name", json: cm("dup"))
            #expect(mismatch.status == 400)
            #expect(mismatch.json?["message"] == "the name of the object (dup) does not match the name on the URL (other-name)")

            // Custom resources: PUT needs a resourceVersion.
            let model: JSONValue = ["apiVersion": "chill.dev/v1alpha1", "kind": "VLLMModel", "metadata": ["name": "dup-model"],
                                    "spec": ["modelName": "m"]]
            let c = await s.handle("POST", "/apis/chill.dev/v1alpha1/vllmmodels", json: model)
            #expect(c.status == 201)
            #expect(c.json?[path: "metadata", "generation"] == 1)
            #expect(c.text.hasPrefix(#"{"apiVersion":"chill.dev/v1alpha1","kind":"VLLMModel","metadata":{"creationTimestamp":"#))
            let noRV = await s.handle("PUT", "/apis/chill.dev/v1alpha1/vllmmodels/dup-model", json: model)
            #expect(noRV.status == 422)
            #expect(noRV.body.count == 444)
            #expect(noRV.json?["message"] == #"vllmmodels.chill.dev "dup-model" is invalid: metadata.resourceVersion: Invalid value: 0: must be specified for an update"#)
            var stale2 = model
            stale2["metadata"] = ["name": "dup-model", "resourceVersion": "1"]
            let conflict = await s.handle("PUT", "/apis/chill.dev/v1alpha1/vllmmodels/dup-model", json: stale2)
            #expect(conflict.status == 409)
            #expect(conflict.body.count == 344)

            // Generation moves only on spec changes.
            var bump = try #require(c.json)
            bump["spec"] = ["modelName": "other"]
            let bumped = await s.handle("PUT", "/apis/chill.dev/v1alpha1/vllmmodels/dup-model", json: bump)
            #expect(bumped.json?[path: "metadata", "generation"] == 2)
        }
    }

    @Test func validationHookGives422() async throws {
        try await withServer { s in
            await setupSamples(s, crd: true)
            let rt = try #require(await s.store.resourceType(group: "chill.dev", version: "v1alpha1", plural: "vllmmodels"))
            await s.setValidator(for: rt) { obj in
                (obj[path: "spec", "minReplicas"]?.intValue ?? 0) > (obj[path: "spec", "maxReplicas"]?.intValue ?? 1)
                    ? [.invalid("spec", "failed rule: self.minReplicas <= self.maxReplicas")] : []
            }
            let r = await raw(s, "POST", "/apis/chill.dev/v1alpha1/vllmmodels",
                              #"{"apiVersion":"chill.dev/v1alpha1","kind":"VLLMModel","metadata":{"name":"cel-bad"},"spec":{"modelName":"m","minReplicas":3,"maxReplicas":1}}"#)
            #expect(r.status == 422)
            #expect(r.body.count == 438)
            #expect(r.json?["message"] == #"VLLMModel.chill.dev "cel-bad" is invalid: spec: Invalid value: failed rule: self.minReplicas <= self.maxReplicas"#)
        }
    }

    // MARK: - List, paging, selectors

    @Test func listPagingAndSelectors() async throws {
        try await withServer { s in
            await setupSamples(s)
            for i in 1...5 {
                _ = await s.handle("POST", "/api/v1/namespaces/samples/configmaps",
                                   json: cm("list-\(i)", labels: ["app": "list-demo", "tier": i % 2 == 1 ? "gpu" : "cpu"]))
            }
            _ = await s.handle("POST", "/api/v1/namespaces/samples/configmaps", json: cm("other"))
            let p1 = try #require(await s.handle(method: "GET", path: "/api/v1/namespaces/samples/configmaps?labelSelector=app%3Dlist-demo&limit=2").json)
            #expect(p1["kind"] == "ConfigMapList")
            #expect(p1[path: "metadata", "remainingItemCount"] == nil)
            #expect(p1["items"]?.arrayValue?.map { $0[path: "metadata", "name"] } == ["list-1", "list-2"])
            #expect(p1["items"]?.arrayValue?.first?["kind"] == nil)  // built-in list items carry no kind
            let token = try #require(p1[path: "metadata", "continue"]?.stringValue)
            let decoded = String(decoding: Data(base64Encoded: token + String(repeating: "=", count: (4 - token.count % 4) % 4)) ?? Data(), as: UTF8.self)
            #expect(decoded.hasPrefix(#"{"v":"meta.k8s.io/v1","rv":"#) && decoded.hasSuffix(#""start":"/list-2\u0000"}"#))
            let p2 = try #require(await s.handle(method: "GET", path: "/api/v1/namespaces/samples/configmaps?labelSelector=app%3Dlist-demo&limit=2&continue=\(token)").json)
            #expect(p2["items"]?.arrayValue?.map { $0[path: "metadata", "name"] } == ["list-3", "list-4"])
            #expect(p2[path: "metadata", "resourceVersion"] == p1[path: "metadata", "resourceVersion"])

            let all = try #require(await s.handle(method: "GET", path: "/api/v1/namespaces/samples/configmaps?limit=2").json)
            #expect(all[path: "metadata", "remainingItemCount"] == 4)

            func names(_ q: String) async -> [String] {
                (await s.handle(method: "GET", path: "/api/v1/namespaces/samples/configmaps?\(q)").json?["items"]?.arrayValue ?? [])
                    .compactMap { $0[path: "metadata", "name"]?.stringValue }
            }
            #expect(await names("labelSelector=app%3Dlist-demo%2Ctier%21%3Dgpu") == ["list-2", "list-4"])
            #expect(await names("labelSelector=tier+in+%28cpu%29") == ["list-2", "list-4"])
            #expect(await names("labelSelector=tier+notin+%28cpu%29") == ["list-1", "list-3", "list-5", "other"])
            #expect(await names("labelSelector=%21tier") == ["other"])
            #expect(await names("labelSelector=tier") == ["list-1", "list-2", "list-3", "list-4", "list-5"])
            #expect(await names("fieldSelector=metadata.name%3Dlist-3") == ["list-3"])
            #expect(await names("fieldSelector=metadata.name%21%3Dlist-3&labelSelector=app%3Dlist-demo") == ["list-1", "list-2", "list-4", "list-5"])

            let badField = await s.handle(method: "GET", path: "/api/v1/namespaces/samples/configmaps?fieldSelector=data.i%3D1")
            #expect(badField.status == 400)
            #expect(badField.body.count == 203)
            let badLabel = await s.handle(method: "GET", path: "/api/v1/namespaces/samples/configmaps?labelSelector=%3D%3Dbad")
            #expect(badLabel.status == 400)
            #expect(badLabel.json?["message"] == "found '==', expected: !, identifier, or 'end of string'")

            // Compaction expires continue tokens older than the compacted revision.
            _ = await s.handle("POST", "/api/v1/namespaces/samples/configmaps", json: cm("before-compaction"))
            await s.compact()
            _ = await s.handle("POST", "/api/v1/namespaces/samples/configmaps", json: cm("after-compaction"))
            let expired = await s.handle(method: "GET", path: "/api/v1/namespaces/samples/configmaps?labelSelector=app%3Dlist-demo&limit=2&continue=\(token)")
            #expect(expired.status == 410)
            #expect(expired.json?["reason"] == "Expired")
            #expect(expired.json?[path: "metadata", "continue"] != nil)

            // Cluster-wide list across namespaces.
            let pods = await s.handle(method: "GET", path: "/api/v1/configmaps")
            #expect(pods.json?["items"]?.arrayValue?.count == 8)
        }
    }

    // MARK: - Watch

    @Test func watchEventsAndTooOldResourceVersion() async throws {
        try await withServer { s in
            await setupSamples(s)
            let list = try #require(await s.handle(method: "GET", path: "/api/v1/namespaces/samples/configmaps").json)
            let rv = try #require(list[path: "metadata", "resourceVersion"]?.stringValue)
            let w = await s.watch("/api/v1/namespaces/samples/configmaps?watch=1&resourceVersion=\(rv)&allowWatchBookmarks=true")
            _ = await s.handle("POST", "/api/v1/namespaces/samples/configmaps", json: cm("watched-cm"))
            _ = await s.handle("PATCH", "/api/v1/namespaces/samples/configmaps/watched-cm", json: ["data": ["k": "v2"]],
                               contentType: "application/merge-patch+json")
            _ = await s.handle(method: "DELETE", path: "/api/v1/namespaces/samples/configmaps/watched-cm")
            await s.sendBookmarks()
            var types: [String] = []
            var rvs: [Int] = []
            for await e in w.events {
                types.append(e["type"]?.stringValue ?? "")
                rvs.append(Int(e[path: "object", "metadata", "resourceVersion"]?.stringValue ?? "") ?? 0)
                if types.count == 4 { break }
            }
            #expect(types == ["ADDED", "MODIFIED", "DELETED", "BOOKMARK"])
            #expect(rvs == rvs.sorted() && rvs[3] == rvs[2])
            w.cancel()

            // Resume from an RV replays history.
            let replay = await s.handle(method: "GET", path: "/api/v1/namespaces/samples/configmaps?watch=1&resourceVersion=\(rv)&timeoutSeconds=1")
            #expect(replay.text.split(separator: "\n").count == 3)

            // Too old: 200 + one ERROR event, then the stream ends.
            await s.compact()
            let old = await s.handle(method: "GET", path: "/api/v1/namespaces/samples/configmaps?watch=1&resourceVersion=1&timeoutSeconds=5")
            #expect(old.status == 200)
            let current = await s.store.currentResourceVersion
            #expect(old.text == #"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (\#(current + 1))","reason":"Expired","code":410}}"# + "\n")

            // RV 0: synthetic ADDED for current state, then the initial-events-end bookmark.
            _ = await s.handle("POST", "/api/v1/namespaces/samples/configmaps", json: cm("a", labels: ["x": "1"]))
            _ = await s.handle("POST", "/api/v1/namespaces/samples/configmaps", json: cm("b"))
            let initial = await s.handle(method: "GET", path: "/api/v1/namespaces/samples/configmaps?watch=1&resourceVersion=0&allowWatchBookmarks=true&labelSelector=x&timeoutSeconds=1")
            let lines = initial.text.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }
            #expect(lines.first?["type"] == "ADDED" && lines.first?[path: "object", "metadata", "name"] == "a")
            #expect(lines.count == 3)  // ADDED a, initial-events-end BOOKMARK, final BOOKMARK at the timeout
            #expect(lines[1][path: "object", "metadata", "annotations", "k8s.io/initial-events-end"] == "true")

            // dropWatches closes streams abruptly.
            let w2 = await s.watch("/api/v1/namespaces/samples/configmaps?watch=1")
            await s.dropWatches()
            var n = 0
            for await _ in w2.events { n += 1 }
            #expect(n == 2)  // the two synthetic ADDED events, then the drop
            #expect(await s.store.openWatchCount == 0)
        }
    }

    // MARK: - Patches, status, scale

    @Test func patchesOfEveryKind() async throws {
        try await withServer { s in
            await setupSamples(s, crd: true)
            _ = await raw(s, "POST", "/api/v1/namespaces/samples/configmaps",
                          #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"patch-demo","labels":{"a":"1","b":"2"}},"data":{"x":"1","y":"2"}}"#)
            let merge = await raw(s, "PATCH", "/api/v1/namespaces/samples/configmaps/patch-demo",
                                  #"{"metadata":{"labels":{"b":null}},"data":{"x":"10","y":null}}"#, contentType: "application/merge-patch+json")
            #expect(merge.json?["data"] == ["x": "10"])
            #expect(merge.json?[path: "metadata", "labels"] == ["a": "1"])
            let json = await raw(s, "PATCH", "/api/v1/namespaces/samples/configmaps/patch-demo",
                                 #"[{"op":"test","path":"/data/x","value":"10"},{"op":"replace","path":"/data/x","value":"11"},{"op":"add","path":"/metadata/labels/c","value":"3"},{"op":"copy","from":"/data/x","path":"/data/z"},{"op":"move","from":"/data/z","path":"/data/w"}]"#,
                                 contentType: "application/json-patch+json")
            #expect(json.json?["data"] == ["x": "11", "w": "11"])
            let failed = await raw(s, "PATCH", "/api/v1/namespaces/samples/configmaps/patch-demo",
                                   #"[{"op":"test","path":"/data/x","value":"999"}]"#, contentType: "application/json-patch+json")
            #expect(failed.status == 422)
            #expect(failed.body.count == 187)
            let stale = await raw(s, "PATCH", "/api/v1/namespaces/samples/configmaps/patch-demo",
                                  #"{"metadata":{"resourceVersion":"1"},"data":{"x":"13"}}"#, contentType: "application/merge-patch+json")
            #expect(stale.status == 409)
            let plainJSON = await raw(s, "PATCH", "/api/v1/namespaces/samples/configmaps/patch-demo", #"{"data":{"x":"14"}}"#)
            #expect(plainJSON.status == 415)
            #expect(plainJSON.body.count == 165)
            let missing = await raw(s, "PATCH", "/api/v1/namespaces/samples/configmaps/missing-cm", #"{"data":{"x":"1"}}"#,
                                    contentType: "application/merge-patch+json")
            #expect(missing.status == 404)

            // Strategic merge on a Deployment: containers by name, env by name, $patch: delete.
            _ = await raw(s, "POST", "/apis/apps/v1/namespaces/samples/deployments", #"""
            {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"patch-deploy"},"spec":{"replicas":0,"selector":{"matchLabels":{"app":"patch-deploy"}},"template":{"metadata":{"labels":{"app":"patch-deploy"}},"spec":{"containers":[{"name":"vllm","image":"vllm/vllm-openai:v0.6.3","env":[{"name":"A","value":"1"}]},{"name":"sidecar","image":"busybox:1.36"}]}}}}
            """#)
            let smp = await raw(s, "PATCH", "/apis/apps/v1/namespaces/samples/deployments/patch-deploy",
                                #"{"spec":{"template":{"spec":{"containers":[{"name":"vllm","image":"vllm/vllm-openai:v0.6.4","env":[{"name":"B","value":"2"}]}]}}}}"#,
                                contentType: "application/strategic-merge-patch+json")
            let containers = smp.json?[path: "spec", "template", "spec", "containers"]?.arrayValue ?? []
            #expect(containers.count == 2)
            #expect(containers.first?["image"] == "vllm/vllm-openai:v0.6.4")
            #expect(containers.first?["env"]?.arrayValue?.count == 2)
            #expect(smp.json?[path: "metadata", "generation"] == 2)
            let del = await raw(s, "PATCH", "/apis/apps/v1/namespaces/samples/deployments/patch-deploy",
                                #"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}"#,
                                contentType: "application/strategic-merge-patch+json")
            #expect(del.json?[path: "spec", "template", "spec", "containers"]?.arrayValue?.count == 1)

            // Custom resources: no strategic merge.
            let crSMP = await raw(s, "PATCH", "/apis/chill.dev/v1alpha1/vllmmodels/x", #"{"spec":{"maxReplicas":2}}"#,
                                  contentType: "application/strategic-merge-patch+json")
            #expect(crSMP.status == 415)
            #expect(crSMP.body.count == 293)

            // Server-side apply.
            let noManager = await raw(s, "PATCH", "/apis/chill.dev/v1alpha1/vllmmodels/ssa-model",
                                      #"{"apiVersion":"chill.dev/v1alpha1","kind":"VLLMModel","metadata":{"name":"ssa-model"},"spec":{"modelName":"m"}}"#,
                                      contentType: "application/apply-patch+yaml")
            #expect(noManager.status == 422)
            #expect(noManager.json?["message"] == #"PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch"#)
            let applyCreate = await raw(s, "PATCH", "/apis/chill.dev/v1alpha1/vllmmodels/ssa-model?fieldManager=kubectl-chill&force=true",
                                        #"{"apiVersion":"chill.dev/v1alpha1","kind":"VLLMModel","metadata":{"name":"ssa-model"},"spec":{"modelName":"m","maxReplicas":1}}"#,
                                        contentType: "application/apply-patch+yaml")
            #expect(applyCreate.status == 201)
            let applyYAML = await raw(s, "PATCH", "/apis/chill.dev/v1alpha1/vllmmodels/ssa-model?fieldManager=kubectl-chill&force=true",
                                      "apiVersion: chill.dev/v1alpha1\nkind: VLLMModel\nmetadata:\n  name: ssa-model\nspec:\n  maxReplicas: 2\n",
                                      contentType: "application/apply-patch+yaml")
            #expect(applyYAML.status == 200)
            // The manager stopped applying modelName and nobody else owns it: removed, as by the real server.
            #expect(applyYAML.json?[path: "spec"] == ["maxReplicas": 2])
            let noKind = await raw(s, "PATCH", "/apis/apps/v1/namespaces/samples/deployments/patch-deploy?fieldManager=x",
                                   "spec:\n  replicas: 0\n", contentType: "application/apply-patch+yaml")
            #expect(noKind.status == 400)
            #expect(noKind.json?["message"] == "invalid object type: /, Kind=")
        }
    }

    @Test func statusAndScaleSubresources() async throws {
        try await withServer { s in
            await setupSamples(s, crd: true)
            let created = await raw(s, "POST", "/apis/chill.dev/v1alpha1/vllmmodels",
                                    #"{"apiVersion":"chill.dev/v1alpha1","kind":"VLLMModel","metadata":{"name":"status-demo"},"spec":{"modelName":"m"},"status":{"phase":"Bogus"}}"#)
            #expect(created.json?["status"] == nil)  // dropped on create
            var obj = try #require(created.json)
            obj["status"] = ["phase": "Ready", "replicas": 1]
            obj["spec"]?["modelName"] = "changed"
            let put = await s.handle("PUT", "/apis/chill.dev/v1alpha1/vllmmodels/status-demo/status", json: obj)
            #expect(put.status == 200)
            #expect(put.json?[path: "status", "phase"] == "Ready")
            #expect(put.json?[path: "spec", "modelName"] == "m")
            #expect(put.json?[path: "metadata", "generation"] == 1)
            let rv = put.json?[path: "metadata", "resourceVersion"]
            let statusOnly = await raw(s, "PATCH", "/apis/chill.dev/v1alpha1/vllmmodels/status-demo", #"{"status":{"phase":"X"}}"#,
                                       contentType: "application/merge-patch+json")
            #expect(statusOnly.json?[path: "metadata", "resourceVersion"] == rv)  // no-op
            #expect(statusOnly.json?[path: "status", "phase"] == "Ready")
            let missing = await raw(s, "PATCH", "/apis/chill.dev/v1alpha1/vllmmodels/nope/status", #"{"status":{}}"#,
                                    contentType: "application/merge-patch+json")
            #expect(missing.status == 404)

            // Deployment scale, exactly like sample 08.
            _ = await raw(s, "POST", "/apis/apps/v1/namespaces/samples/deployments", #"""
            {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"vllm-qwen","labels":{"app":"vllm-qwen"}},"spec":{"replicas":0,"selector":{"matchLabels":{"app":"vllm-qwen"}},"template":{"metadata":{"labels":{"app":"vllm-qwen"}},"spec":{"containers":[{"name":"vllm","image":"vllm/vllm-openai:v0.6.3","ports":[{"containerPort":8000,"name":"http"}]}]}}}}
            """#)
            let scale = await s.handle(method: "GET", path: "/apis/apps/v1/namespaces/samples/deployments/vllm-qwen/scale")
            let dep = try #require(await s.store.get(.deployments, namespace: "samples", name: "vllm-qwen"))
            #expect(scale.text == #"{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"vllm-qwen","namespace":"samples","uid":"\#(dep[path: "metadata", "uid"]?.stringValue ?? "")","resourceVersion":"\#(dep[path: "metadata", "resourceVersion"]?.stringValue ?? "")","creationTimestamp":"\#(dep[path: "metadata", "creationTimestamp"]?.stringValue ?? "")"},"spec":{},"status":{"replicas":0,"selector":"app=vllm-qwen"}}"# + "\n")
            let scaled = await raw(s, "PATCH", "/apis/apps/v1/namespaces/samples/deployments/vllm-qwen/scale", #"{"spec":{"replicas":1}}"#,
                                   contentType: "application/merge-patch+json")
            #expect(scaled.json?[path: "spec", "replicas"] == 1)
            #expect(scaled.json?[path: "status", "selector"] == "app=vllm-qwen")
            let after = try #require(await s.store.get(.deployments, namespace: "samples", name: "vllm-qwen"))
            #expect(after[path: "spec", "replicas"] == 1)
            #expect(after[path: "metadata", "generation"] == 2)
            let stalePut = await s.handle("PUT", "/apis/apps/v1/namespaces/samples/deployments/vllm-qwen/scale",
                                          json: ["apiVersion": "autoscaling/v1", "kind": "Scale",
                                                 "metadata": ["name": "vllm-qwen", "namespace": "samples", "resourceVersion": "1"],
                                                 "spec": ["replicas": 0]])
            #expect(stalePut.status == 409)
        }
    }

    @Test func deleteSemantics() async throws {
        try await withServer { s in
            await setupSamples(s)
            let c = try #require(await s.handle("POST", "/api/v1/namespaces/samples/configmaps", json: cm("list-5")).json)
            let del = await s.handle(method: "DELETE", path: "/api/v1/namespaces/samples/configmaps/list-5")
            #expect(del.status == 200)
            #expect(del.text == #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":{"name":"list-5","kind":"configmaps","uid":"\#(c[path: "metadata", "uid"]?.stringValue ?? "")"}}"# + "\n")
            #expect(await s.handle(method: "DELETE", path: "/api/v1/namespaces/samples/configmaps/list-5").status == 404)
            let bogus = await s.handle(method: "DELETE", path: "/api/v1/namespaces/samples/configmaps/x?propagationPolicy=Bogus")
            #expect(bogus.status == 422)
            #expect(bogus.body.count == 517)

            // Finalizers hold an object until they are removed.
            var f = cm("held")
            f["metadata"]?["finalizers"] = ["example.com/hold"]
            _ = await s.handle("POST", "/api/v1/namespaces/samples/configmaps", json: f)
            let held = await s.handle(method: "DELETE", path: "/api/v1/namespaces/samples/configmaps/held")
            #expect(held.json?[path: "metadata", "deletionTimestamp"] != nil)
            let release = await raw(s, "PATCH", "/api/v1/namespaces/samples/configmaps/held", #"[{"op":"remove","path":"/metadata/finalizers"}]"#,
                                    contentType: "application/json-patch+json")
            #expect(release.status == 200)
            #expect(await s.handle(method: "GET", path: "/api/v1/namespaces/samples/configmaps/held").status == 404)
        }
    }

    @Test func crdCreationRegistersTheResource() async throws {
        try await withServer { s in
            await setupSamples(s, crd: true)
            let crd = try #require(await s.handle(method: "GET", path: "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/vllmmodels.chill.dev").json)
            let conditions = crd[path: "status", "conditions"]?.arrayValue ?? []
            #expect(conditions.map { $0["type"] } == ["NamesAccepted", "Established"])
            #expect(conditions.allSatisfy { $0["status"] == "True" })
            let list = await s.handle(method: "GET", path: "/apis/chill.dev/v1alpha1/vllmmodels")
            #expect(list.text == #"{"apiVersion":"chill.dev/v1alpha1","items":[],"kind":"VLLMModelList","metadata":{"continue":"","resourceVersion":"\#(await s.store.currentResourceVersion)"}}"# + "\n")
            let disco = await s.handle(method: "GET", path: "/apis/chill.dev/v1alpha1")
            #expect(disco.json?["resources"]?.arrayValue?.map { $0["name"] } == ["vllmmodels", "vllmmodels/status"])
            _ = await s.handle(method: "DELETE", path: "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/vllmmodels.chill.dev")
            #expect(await s.handle(method: "GET", path: "/apis/chill.dev/v1alpha1/vllmmodels").text == "404 page not found\n")
        }
    }

    // MARK: - Deployment simulator

    func deployment(_ name: String, replicas: Int) -> JSONValue {
        ["apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": .string(name), "namespace": "samples"],
         "spec": ["replicas": .int(replicas), "selector": ["matchLabels": ["app": .string(name)]],
                  "template": ["metadata": ["labels": ["app": .string(name)]],
                               "spec": ["containers": [["name": "vllm", "image": "vllm/vllm-openai:v0.6.3",
                                                        "ports": [["containerPort": 8000]]]]]]]]
    }

    func scale(_ s: KubeTestServer, _ name: String, to n: Int) async -> KubeResponse {
        await raw(s, "PATCH", "/apis/apps/v1/namespaces/samples/deployments/\(name)/scale", #"{"spec":{"replicas":\#(n)}}"#,
                  contentType: "application/merge-patch+json")
    }

    @Test func simulatorScalesWithManualClock() async throws {
        try await withServer(clock: .manual) { s in
            await setupSamples(s)
            s.simulator.readyDelay = .seconds(2)
            _ = await s.handle("POST", "/apis/apps/v1/namespaces/samples/deployments", json: deployment("vllm-qwen", replicas: 0))
            var dep = try #require(await s.store.get(.deployments, namespace: "samples", name: "vllm-qwen"))
            #expect(dep[path: "status", "observedGeneration"] == 1)
            #expect(dep[path: "status", "conditions"]?.arrayValue?.first?["reason"] == "MinimumReplicasAvailable")

            let w = await s.watch("/api/v1/namespaces/samples/pods?watch=1&resourceVersion=\(await s.store.currentResourceVersion)")
            #expect(await scale(s, "vllm-qwen", to: 1).status == 200)
            dep = try #require(await s.store.get(.deployments, namespace: "samples", name: "vllm-qwen"))
            #expect(dep[path: "status", "replicas"] == 1)
            #expect(dep[path: "status", "unavailableReplicas"] == 1)
            #expect(dep[path: "status", "readyReplicas"] == nil)
            let available = dep[path: "status", "conditions"]?.arrayValue?.first { $0["type"] == "Available" }
            #expect(available?["status"] == "False")
            #expect(available?["reason"] == "MinimumReplicasUnavailable")

            let pods = await s.store.list(.pods, namespace: "samples", labelSelector: "app=vllm-qwen")
            #expect(pods.count == 1)
            let pod = try #require(pods.first)
            #expect(pod[path: "status", "phase"] == "Running")
            #expect(pod[path: "status", "podIP"] == "127.0.0.1")
            #expect(pod[path: "metadata", "ownerReferences"]?.arrayValue?.first?["kind"] == "ReplicaSet")
            #expect(pod[path: "metadata", "labels", "pod-template-hash"] != nil)

            await s.advance(by: .seconds(1))
            #expect(await s.store.get(.deployments, namespace: "samples", name: "vllm-qwen")?[path: "status", "readyReplicas"] == nil)
            await s.advance(by: .seconds(1))
            dep = try #require(await s.store.get(.deployments, namespace: "samples", name: "vllm-qwen"))
            #expect(dep[path: "status", "readyReplicas"] == 1)
            #expect(dep[path: "status", "availableReplicas"] == 1)
            #expect(dep[path: "status", "conditions"]?.arrayValue?.first { $0["type"] == "Available" }?["status"] == "True")

            // Scale to zero deletes the pod (graceful: MODIFIED with deletionTimestamp, then DELETED).
            _ = await scale(s, "vllm-qwen", to: 0)
            #expect(await s.store.list(.pods, namespace: "samples").isEmpty)
            w.cancel()
            var seen: [String] = []
            for await e in w.events { seen.append(e["type"]?.stringValue ?? "") }
            #expect(seen.first == "ADDED")
            #expect(seen.suffix(2) == ["MODIFIED", "DELETED"])

            let events = await s.store.list(.events, namespace: "samples").map { $0["reason"]?.stringValue ?? "" }
            #expect(events.contains("Scheduled") && events.contains("SuccessfulCreate") && events.contains("ScalingReplicaSet"))

            // Deleting the Deployment deletes its Pods.
            _ = await scale(s, "vllm-qwen", to: 2)
            #expect(await s.store.list(.pods, namespace: "samples").count == 2)
            _ = await s.handle(method: "DELETE", path: "/apis/apps/v1/namespaces/samples/deployments/vllm-qwen")
            #expect(await s.store.list(.pods, namespace: "samples").isEmpty)
        }
    }

    @Test func simulatorFailures() async throws {
        try await withServer(clock: .manual) { s in
            await setupSamples(s)
            for name in ["crash", "pull", "backoff", "nogpu"] {
                _ = await s.handle("POST", "/apis/apps/v1/namespaces/samples/deployments", json: deployment(name, replicas: 0))
            }
            s.simulator.setFailure(.crashLoopBackOff(restartCount: 4), namespace: "samples", deployment: "crash")
            s.simulator.setFailure(.errImagePull(), namespace: "samples", deployment: "pull")
            s.simulator.setFailure(.imagePullBackOff(), namespace: "samples", deployment: "backoff")
            s.simulator.setFailure(.unschedulable(), namespace: "samples", deployment: "nogpu")
            for name in ["crash", "pull", "backoff", "nogpu"] { _ = await scale(s, name, to: 1) }
            await s.advance(by: .seconds(600))

            func pod(_ app: String) async -> JSONValue? { await s.store.list(.pods, namespace: "samples", labelSelector: "app=\(app)").first }
            func events(_ pod: JSONValue?) async -> [JSONValue] {
                let name = pod?[path: "metadata", "name"]?.stringValue ?? ""
                return await s.handle(method: "GET", path: "/api/v1/namespaces/samples/events?fieldSelector=involvedObject.name%3D\(name)")
                    .json?["items"]?.arrayValue ?? []
            }
            let crash = await pod("crash")
            let cs = crash?[path: "status", "containerStatuses"]?.arrayValue?.first
            #expect(cs?[path: "state", "waiting", "reason"] == "CrashLoopBackOff")
            #expect(cs?["restartCount"] == 4)
            #expect(await events(crash).contains { $0["reason"] == "BackOff" && $0["type"] == "Warning" })

            let pull = await pod("pull")
            #expect(pull?[path: "status", "containerStatuses"]?.arrayValue?.first?[path: "state", "waiting", "reason"] == "ErrImagePull")
            #expect(await events(pull).contains { $0["reason"] == "Failed" && ($0["message"]?.stringValue ?? "").hasPrefix("Failed to pull image") })
            let backoff = await pod("backoff")
            #expect(backoff?[path: "status", "containerStatuses"]?.arrayValue?.first?[path: "state", "waiting", "reason"] == "ImagePullBackOff")

            let nogpu = await pod("nogpu")
            let scheduled = nogpu?[path: "status", "conditions"]?.arrayValue?.first { $0["type"] == "PodScheduled" }
            #expect(scheduled?["status"] == "False")
            #expect(scheduled?["reason"] == "Unschedulable")
            #expect(scheduled?["message"] == "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.")
            #expect(await events(nogpu).contains { $0["reason"] == "FailedScheduling" })
            #expect(await s.store.get(.deployments, namespace: "samples", name: "nogpu")?[path: "status", "readyReplicas"] == nil)

            // Clearing a failure replaces the Pods with healthy ones.
            await s.setDeploymentFailure(nil, namespace: "samples", deployment: "nogpu")
            #expect(await s.store.get(.deployments, namespace: "samples", name: "nogpu")?[path: "status", "readyReplicas"] == 1)
        }
    }

    @Test func simulatorWithoutAutoReady() async throws {
        try await withServer { s in
            await setupSamples(s)
            s.simulator.autoReady = false
            _ = await s.handle("POST", "/apis/apps/v1/namespaces/samples/deployments", json: deployment("d", replicas: 1))
            #expect(await s.store.get(.deployments, namespace: "samples", name: "d")?[path: "status", "readyReplicas"] == nil)
            await s.markPodsReady(namespace: "samples", deployment: "d")
            #expect(await s.store.get(.deployments, namespace: "samples", name: "d")?[path: "status", "readyReplicas"] == 1)
        }
    }

    // MARK: - Auth and request log

    @Test func authenticationInProcess() async throws {
        try await withServer { s in
            let bogus = await s.handle(method: "GET", path: "/api/v1/namespaces/default/secrets",
                                       headers: [("Authorization", "Bearer nope")], user: nil)
            #expect(bogus.status == 401)
            #expect(bogus.text == #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"# + "\n")
            let anon = await s.handle(method: "GET", path: "/api/v1/namespaces/samples/secrets", user: nil)
            #expect(anon.status == 403)
            #expect(anon.body.count == 270)
            let token = await s.handle(method: "GET", path: "/api/v1/namespaces/default/secrets",
                                       headers: [("Authorization", "Bearer \(KubeTestServer.defaultToken)")], user: nil)
            #expect(token.status == 200)
            await s.setAuthorizer { user, attrs in !(user.name == "test-token-user" && attrs.resource == "secrets") }
            let denied = await s.handle(method: "GET", path: "/api/v1/namespaces/samples/secrets/some-secret",
                                        headers: [("Authorization", "Bearer \(KubeTestServer.defaultToken)")], user: nil)
            #expect(denied.json?["message"] == #"secrets "some-secret" is forbidden: User "test-token-user" cannot get resource "secrets" in API group "" in the namespace "samples""#)
            let log = await s.requests
            #expect(log.last?.user == "test-token-user")
            #expect(log.last?.header("authorization") == "Bearer \(KubeTestServer.defaultToken)")
            #expect(log.first?.user == nil)
        }
    }

    /// Beyond the request's verb: an apply that creates is authorized as `create` too, and
    /// `blockOwnerDeletion` needs `update` on the owner's `finalizers` (OwnerReferencesPermissionEnforcement).
    @Test func applyCreateAndBlockOwnerDeletionAreAuthorized() async throws {
        try await withServer { s in
            let auth = [("Authorization", "Bearer \(KubeTestServer.defaultToken)")]
            let owner = await s.handle("POST", "/api/v1/namespaces/default/configmaps", json: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "owner"]])
            let uid = try #require(owner.json?["metadata"]?["uid"])
            let allowed = Mutex<Set<String>>(["patch"])
            await s.setAuthorizer { _, a in allowed.withLock { $0.contains(a.subresource.map { "\(a.verb) \(a.resource)/\($0)" } ?? a.verb) } }
            func apply(_ name: String, owned: Bool) async -> KubeResponse {
                var metadata: JSONValue = ["name": .string(name)]
                if owned {
                    metadata["ownerReferences"] = [["apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid, "blockOwnerDeletion": true]]
                }
                let object: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata]
                return await s.handle(method: "PATCH", path: "/api/v1/namespaces/default/configmaps/\(name)?fieldManager=t",
                                      headers: auth + [("Content-Type", "application/apply-patch+yaml")], body: Data(object.jsonString().utf8), user: nil)
            }
            let noCreate = await apply("a", owned: false)
            #expect(noCreate.status == 403)
            #expect(noCreate.json?["message"] == #"configmaps "a" is forbidden: User "test-token-user" cannot create resource "configmaps" in API group "" in the namespace "default""#)
            allowed.withLock { _ = $0.insert("create") }
            #expect(await apply("a", owned: false).status == 201)
            let noFinalizers = await apply("b", owned: true)
            #expect(noFinalizers.status == 403)
            #expect(noFinalizers.json?["message"]?.stringValue?.contains("cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on") == true)
            #expect(await apply("a", owned: true).status == 403, "adding the reference to an existing object is checked too")
            allowed.withLock { _ = $0.insert("update configmaps/finalizers") }
            #expect(await apply("b", owned: true).status == 201)
        }
    }

    /// Runs curl against the server; returns (exit code, stdout).
    func curl(_ args: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["curl", "-sS", "--http1.1", "--max-time", "10"] + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = Pipe()
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func tlsClientCertificatesAndTokens() async throws {
        try await withServer { s in
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kts-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            func write(_ name: String, _ s: String) throws -> String {
                let u = dir.appendingPathComponent(name)
                try s.write(to: u, atomically: true, encoding: .utf8)
                return u.path
            }
            let ca = try write("ca.crt", TestPKI.caCertificate)
            let cert = try write("c.crt", TestPKI.clientCertificate), key = try write("c.key", TestPKI.clientKey)
            let ucert = try write("u.crt", TestPKI.untrustedClientCertificate), ukey = try write("u.key", TestPKI.untrustedClientKey)
            let url = s.url + "/api/v1/namespaces/default/configmaps"

            let (rc, body) = try curl(["--cacert", ca, "--cert", cert, "--key", key, url])
            #expect(rc == 0)
            #expect(body.contains(#""kind":"ConfigMapList""#))
            #expect(await s.requests.last?.user == "chill-admin")

            let (_, tok) = try curl(["--cacert", ca, "-H", "Authorization: Bearer \(KubeTestServer.defaultToken)", url])
            #expect(tok.contains(#""kind":"ConfigMapList""#))
            let (_, bogus) = try curl(["--cacert", ca, "-H", "Authorization: Bearer nope", url])
            #expect(bogus == #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"# + "\n")
            let (_, anon) = try curl(["--cacert", ca, url])
            #expect(anon.contains(#""message":"configmaps is forbidden: User \"system:anonymous\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\"""#))
            // An untrusted client certificate does not fail the handshake; the request gets the 401 Status.
            let (urc, untrusted) = try curl(["--cacert", ca, "--cert", ucert, "--key", ukey, url])
            #expect(urc == 0)
            #expect(untrusted == bogus)

            // A watch over TLS: chunked, one event per line, ends at timeoutSeconds.
            let (wrc, watch) = try curl(["--cacert", ca, "--cert", cert, "--key", key,
                                         s.url + "/api/v1/namespaces?watch=1&timeoutSeconds=1"])
            #expect(wrc == 0)
            #expect(watch.split(separator: "\n").count == 4)  // default, kube-system, kube-public, kube-node-lease
        }
    }
}
