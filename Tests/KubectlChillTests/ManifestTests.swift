import Foundation
import Testing
@testable import kubectl_chill
@testable import Shared

/// The install manifest generator: golden file, object order, exact RBAC, the proxy's pod spec.
@Suite struct ManifestTests {
    /// Tests/KubectlChillTests/ManifestTests.swift -> ../../
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static var updating: Bool { ProcessInfo.processInfo.environment["CHILL_UPDATE_MANIFESTS"] == "1" }

    static func object(_ kind: String, _ options: InstallOptions = InstallOptions()) throws -> JSONValue {
        try #require(InstallManifests.generate(options).first { $0["kind"]?.stringValue == kind })
    }

    // MARK: Golden file

    @Test func installYAMLMatchesTheGenerator() throws {
        let path = Self.packageRoot + "/manifests/install.yaml"
        let generated = InstallManifests.yaml()
        if Self.updating {
            try generated.write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        let onDisk = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        #expect(onDisk == generated, "manifests/install.yaml is stale: regenerate with CHILL_UPDATE_MANIFESTS=1 swift test --filter ManifestTests")
    }

    @Test func manifestsCommandPrintsTheInstallFile() async throws {
        let run = await InstallRun.run(["manifests"])
        #expect(run.code == 0)
        #expect(run.err == "")
        #expect(run.out == InstallManifests.yaml())
        #expect(run.out.hasPrefix("# GENERATED FILE - do not edit by hand.\n"))
        // The YAML reads back as exactly the generated objects.
        #expect(try YAML.decodeDocuments(run.out) == InstallManifests.generate())
    }

    @Test func objectsComeInApplyOrder() {
        let objects = InstallManifests.generate()
        #expect(objects.map { $0["kind"]?.stringValue ?? "" } == [
            "CustomResourceDefinition", "Namespace", "ServiceAccount", "Role", "RoleBinding",
            "ClusterRole", "ClusterRoleBinding", "Deployment", "Service",
        ])
        #expect(objects.map(InstallManifests.displayName(of:)) == installLines("").map { String($0.dropLast()) })
        for object in objects {
            let type = InstallManifests.resourceType(of: object)
            #expect(type != nil)
            #expect(object[path: "metadata", "labels", "app.kubernetes.io/name"] == "chill")
            #expect(object[path: "metadata", "labels", "app.kubernetes.io/version"] == .string(ChillVersion.current))
            #expect(object[path: "metadata", "labels", "app.kubernetes.io/managed-by"] == "kubectl-chill")
            if type?.isNamespaced == true {
                #expect(object[path: "metadata", "namespace"] == "chill-system")
            } else {
                #expect(object[path: "metadata", "namespace"] == nil)
            }
        }
        // The CRD is the one of manifests/crd.yaml plus the install labels.
        var crd = InstallManifests.customResourceDefinition()
        crd["metadata"]?["labels"] = VLLMModelCRD.definition()[path: "metadata", "labels"]
        #expect(crd == VLLMModelCRD.definition())
    }

    @Test func namespaceOptionMovesEveryNamespacedObjectAndTheSubjects() throws {
        let options = InstallOptions(namespace: "ml")
        let objects = InstallManifests.generate(options)
        #expect(objects[1][path: "metadata", "name"] == "ml")
        for object in objects where InstallManifests.resourceType(of: object)?.isNamespaced == true {
            #expect(object[path: "metadata", "namespace"] == "ml")
        }
        for kind in ["RoleBinding", "ClusterRoleBinding"] {
            #expect(try Self.object(kind, options)["subjects"] == [["kind": "ServiceAccount", "name": "chill-server", "namespace": "ml"]])
        }
    }

    // MARK: RBAC, exactly

    static func rules(_ object: JSONValue) -> [String] {
        (object["rules"]?.arrayValue ?? []).map { rule in
            let groups = (rule["apiGroups"]?.arrayValue ?? []).compactMap(\.stringValue).map { $0.isEmpty ? "core" : $0 }
            let resources = (rule["resources"]?.arrayValue ?? []).compactMap(\.stringValue)
            let names = (rule["resourceNames"]?.arrayValue ?? []).compactMap(\.stringValue)
            let verbs = (rule["verbs"]?.arrayValue ?? []).compactMap(\.stringValue)
            return "\(groups.joined(separator: ",")) \(resources.joined(separator: ","))\(names.isEmpty ? "" : "[" + names.joined(separator: ",") + "]"): \(verbs.joined(separator: ","))"
        }
    }

    @Test func roleGrantsExactlyWhatChillServerNeeds() throws {
        #expect(Self.rules(try Self.object("Role")) == [
            "apps deployments: list,watch,create,patch",
            "core services: create,patch",
            "core persistentvolumeclaims: create,patch",
            "core pods: list,watch",
            "core events: list,watch",
            "core configmaps: list,watch,create,patch",
        ])
        #expect(Self.rules(try Self.object("ClusterRole")) == [
            "chill.dev vllmmodels: list,watch",
            "chill.dev vllmmodels/status: patch",
            "chill.dev vllmmodels/finalizers: update",
        ])
        // Nothing broad: no wildcards, no secrets, no delete, no scale subresource, no leases.
        let all = Self.rules(try Self.object("Role")) + Self.rules(try Self.object("ClusterRole"))
        for rule in all {
            #expect(!rule.contains("*"))
            #expect(!rule.contains("secrets") && !rule.contains("/scale") && !rule.contains("leases"))
            #expect(!rule.contains("delete") && !rule.contains("escalate") && !rule.contains("bind"))
        }
        // Workloads and the ConfigMap are written by server-side apply only: patch, never update.
        for rule in Self.rules(try Self.object("Role")) { #expect(!rule.contains("update"), "\(rule)") }
        // Every verb has a reason.
        for rule in ChillRBAC.namespaced + ChillRBAC.cluster {
            for verb in rule.verbs { #expect(!verb.reason.isEmpty, "\(rule.resource) \(verb.name)") }
        }
    }

    @Test func bindingsPointAtTheServiceAccount() throws {
        let subjects: JSONValue = [["kind": "ServiceAccount", "name": "chill-server", "namespace": "chill-system"]]
        let rb = try Self.object("RoleBinding")
        #expect(rb["roleRef"] == ["apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "chill-server"])
        #expect(rb["subjects"] == subjects)
        let crb = try Self.object("ClusterRoleBinding")
        #expect(crb["roleRef"] == ["apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "chill-server"])
        #expect(crb["subjects"] == subjects)
        #expect(try Self.object("ServiceAccount")[path: "metadata", "name"] == "chill-server")
    }

    /// The table between the markers in docs/QUICKSTART.md is `ChillRBAC.markdownTable()`
    /// (rewritten with CHILL_UPDATE_MANIFESTS=1).
    @Test func quickstartDocumentsTheRules() throws {
        let path = Self.packageRoot + "/docs/QUICKSTART.md"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let begin = "<!-- rbac-table:begin (generated from ChillRBAC) -->\n", end = "<!-- rbac-table:end -->"
        let start = try #require(text.range(of: begin), "docs/QUICKSTART.md lacks the rbac-table markers")
        let stop = try #require(text.range(of: end, range: start.upperBound..<text.endIndex))
        let table = ChillRBAC.markdownTable()
        if Self.updating {
            try (text[..<start.upperBound] + table + text[stop.lowerBound...]).write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        #expect(String(text[start.upperBound..<stop.lowerBound]) == table, "docs/QUICKSTART.md's RBAC table is stale: regenerate with CHILL_UPDATE_MANIFESTS=1 swift test --filter ManifestTests")
    }

    // MARK: The proxy Deployment

    @Test func deploymentIsLockedDown() throws {
        let deployment = try Self.object("Deployment")
        #expect(deployment[path: "metadata", "name"] == "chill-server")
        #expect(deployment[path: "spec", "replicas"] == 1)
        #expect(deployment[path: "spec", "selector"] == ["matchLabels": ["app.kubernetes.io/name": "chill", "app.kubernetes.io/component": "proxy"]])
        let pod = try #require(deployment[path: "spec", "template", "spec"])
        #expect(deployment[path: "spec", "template", "metadata", "labels", "app.kubernetes.io/component"] == "proxy")
        #expect(pod["serviceAccountName"] == "chill-server")
        #expect(pod["automountServiceAccountToken"] == true)
        #expect(pod["terminationGracePeriodSeconds"] == 45)
        #expect(pod["securityContext"] == [
            "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
            "seccompProfile": ["type": "RuntimeDefault"],
        ])
        let containers = pod["containers"]?.arrayValue ?? []
        #expect(containers.count == 1)
        let c = try #require(containers.first)
        #expect(c["image"] == .string(ChillVersion.defaultImage))
        #expect(c["image"] == "ghcr.io/chill-dev/chill-server:0.1.0")
        #expect(c["args"] == ["--backend", "kubernetes"])
        #expect(c["securityContext"] == [
            "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "runAsNonRoot": true,
            "runAsUser": 65532, "runAsGroup": 65532, "capabilities": ["drop": ["ALL"]],
            "seccompProfile": ["type": "RuntimeDefault"],
        ])
        #expect(c["resources"] == ["requests": ["cpu": "50m", "memory": "64Mi"], "limits": ["memory": "256Mi"]])
        #expect(c["ports"] == [["name": "http", "containerPort": 8080, "protocol": "TCP"]])
        #expect(c[path: "livenessProbe", "httpGet"] == ["path": "/health", "port": "http"])
        #expect(c[path: "readinessProbe", "httpGet"] == ["path": "/readyz", "port": "http"])
        #expect(c["volumeMounts"] == [["name": "tmp", "mountPath": "/tmp"]])
        #expect(pod["volumes"] == [["name": "tmp", "emptyDir": ["sizeLimit": "64Mi"]]])
        #expect(c["env"] == [
            ["name": "PORT", "value": "8080"],
            ["name": "VLLM_NAMESPACE", "valueFrom": ["fieldRef": ["apiVersion": "v1", "fieldPath": "metadata.namespace"]]],
            ["name": "IDLE_TIMEOUT", "value": "5m"],
            ["name": "WAKE_TIMEOUT", "value": "10m"],
            ["name": "CHILL_BACKEND", "value": "kubernetes"],
            ["name": "CHILL_MODE", "value": "exclusive"],
        ])
        #expect(!(c["env"]?.arrayValue ?? []).contains { $0["name"] == "VLLM_DEPLOYMENT" })
    }

    @Test func optionsReachThePodSpec() throws {
        let options = InstallOptions(
            image: "registry.example/chill:dev", idleTimeout: "15m", wakeTimeout: "20m",
            adminTokenSecret: "chill-admin", apiKeySecret: "vllm-key", replicas: 1)
        #expect(options.problems() == [])
        let deployment = try Self.object("Deployment", options)
        let c = try #require(deployment[path: "spec", "template", "spec", "containers"]?.arrayValue?.first)
        #expect(deployment[path: "spec", "replicas"] == 1)
        #expect(deployment[path: "spec", "strategy", "type"] == "Recreate", "never two controllers during an upgrade")
        #expect(c["image"] == "registry.example/chill:dev")
        #expect(c["env"] == [
            ["name": "PORT", "value": "8080"],
            ["name": "VLLM_NAMESPACE", "valueFrom": ["fieldRef": ["apiVersion": "v1", "fieldPath": "metadata.namespace"]]],
            ["name": "IDLE_TIMEOUT", "value": "15m"],
            ["name": "WAKE_TIMEOUT", "value": "20m"],
            ["name": "CHILL_BACKEND", "value": "kubernetes"],
            ["name": "CHILL_MODE", "value": "exclusive"],
            ["name": "CHILL_ADMIN_TOKEN", "valueFrom": ["secretKeyRef": ["name": "chill-admin", "key": "token"]]],
            ["name": "VLLM_API_KEY", "valueFrom": ["secretKeyRef": ["name": "vllm-key", "key": "api-key"]]],
            ["name": "VLLM_API_KEY_SECRET", "value": "vllm-key"],
        ])
    }

    @Test func serviceFrontsThePort() throws {
        let service = try Self.object("Service")
        #expect(service[path: "metadata", "name"] == "chill")
        #expect(service["spec"] == [
            "type": "ClusterIP",
            "selector": ["app.kubernetes.io/name": "chill", "app.kubernetes.io/component": "proxy"],
            "ports": [["name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"]],
        ])
        #expect(service[path: "metadata", "annotations", "prometheus.io/path"] == "/proxy/metrics")
    }

    @Test func optionProblems() {
        #expect(InstallOptions().problems() == [])
        #expect(InstallOptions(idleTimeout: "0s").problems() == ["--idle-timeout \"0s\" is not a positive duration — use e.g. 30s, 5m or 1h30m"])
        #expect(InstallOptions(image: "").problems().count == 1)
        #expect(InstallOptions(replicas: 2).problems() == ["--replicas 2: only 1 is supported until chill-server has leader election (each replica would run its own controller)"])
        #expect(InstallOptions.isDNSSubdomain("chill-admin.v1"))
        #expect(!InstallOptions.isDNSSubdomain("chill..admin"))
        #expect(!InstallOptions.isDNSLabel("-x"))
        #expect(!InstallOptions.isDNSLabel(String(repeating: "a", count: 64)))
    }

    // MARK: Readiness

    @Test func rolloutReadiness() throws {
        func deployment(generation: Int, observed: Int?, replicas: Int, updated: Int, ready: Int) throws -> Deployment {
            let value: JSONValue = [
                "metadata": ["name": "chill-server", "generation": .int(generation)],
                "spec": ["replicas": .int(replicas), "selector": [:], "template": [:]],
                "status": [
                    "observedGeneration": observed.map(JSONValue.int) ?? .null,
                    "replicas": .int(updated), "updatedReplicas": .int(updated), "readyReplicas": .int(ready), "availableReplicas": .int(ready),
                ],
            ]
            return try value.decode()
        }
        #expect(Installer.rollout(try deployment(generation: 1, observed: 1, replicas: 1, updated: 1, ready: 1)) == (true, "1/1 ready"))
        #expect(Installer.rollout(try deployment(generation: 2, observed: 1, replicas: 1, updated: 1, ready: 1)) == (false, "1/1 ready, waiting for the controller"))
        #expect(Installer.rollout(try deployment(generation: 2, observed: nil, replicas: 1, updated: 0, ready: 0)).ready == false)
        #expect(Installer.rollout(try deployment(generation: 2, observed: 2, replicas: 2, updated: 1, ready: 2)) == (false, "2/2 ready, 1/2 updated"))
        // As kubectl rollout status: every updated replica must be available.
        #expect(Installer.rollout(try deployment(generation: 2, observed: 2, replicas: 2, updated: 2, ready: 1)) == (false, "1/2 ready, 1/2 updated available"))
        #expect(Installer.rollout(try deployment(generation: 2, observed: 2, replicas: 1, updated: 1, ready: 0)) == (false, "0/1 ready, 0/1 updated available"))
    }

    @Test func summaries() {
        #expect(Installer.summary([.unchanged, .unchanged, .skipped]) == "nothing changed")
        #expect(Installer.summary([.created, .created]) == "2 created")
        #expect(Installer.summary([.configured, .unchanged, .skipped]) == "1 configured, 1 unchanged")
    }
}
