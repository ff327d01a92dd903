import Foundation
import KubeTestServer
import Testing
@testable import Shared

/// The libcurl client against the in-process API server, over real TLS.
@Suite struct KubeClientTests {
    static func adminSettings(_ server: KubeTestServer) -> TransportSettings {
        var settings = TransportSettings(server: server.url)
        settings.caData = Array(TestPKI.caCertificate.utf8)
        settings.clientCertificateData = Array(TestPKI.clientCertificate.utf8)
        settings.clientKeyData = Array(TestPKI.clientKey.utf8)
        return settings
    }

    static func adminClient(_ server: KubeTestServer, namespace: String = "default") -> KubeClient {
        KubeClient(configuration: ClientConfiguration(transport: adminSettings(server), namespace: namespace))
    }

    static func tokenClient(_ server: KubeTestServer, credential: ClientConfiguration.Credential) -> KubeClient {
        var settings = TransportSettings(server: server.url)
        settings.caData = Array(TestPKI.caCertificate.utf8)
        return KubeClient(configuration: ClientConfiguration(transport: settings, credential: credential))
    }

    @Test func clientCertificateFromKubeconfigFilesWithRelativePaths() async throws {
        let server = try await KubeTestServer.start()
        defer { Task { try? await server.shutdown() } }
        let dir = try TempDir()
        defer { dir.cleanup() }
        try dir.write("pki/ca.crt", TestPKI.caCertificate)
        try dir.write("pki/admin.crt", TestPKI.clientCertificate)
        try dir.write("pki/admin.key", TestPKI.clientKey)
        let kubeconfig = try dir.write("config", """
            apiVersion: v1
            kind: Config
            current-context: test
            clusters: [{name: t, cluster: {server: "\(server.url)", certificate-authority: pki/ca.crt}}]
            contexts: [{name: test, context: {cluster: t, user: admin, namespace: team}}]
            users: [{name: admin, user: {client-certificate: pki/admin.crt, client-key: pki/admin.key}}]
            """)
        let client = KubeClient(configuration: try ClientConfiguration.load(kubeconfig: kubeconfig, environment: [:]))
        #expect(client.namespace == "team")
        _ = try await client.api(Namespace.self).create(Namespace(metadata: ObjectMeta(name: "team")))
        let created = try await client.api(ConfigMap.self).create(ConfigMap(metadata: ObjectMeta(name: "files"), data: ["k": "v"]))
        #expect(created.metadata.namespace == "team")
        #expect(created.metadata.resourceVersion != nil)
        let requests = await server.store.requestLog
        #expect(requests.last?.user == "chill-admin")
    }

    @Test func bearerTokensFromEveryCredentialKind() async throws {
        let server = try await KubeTestServer.start(tokens: ["static-token": "alice", "file-token": "bob", "exec-token": "carol"])
        defer { Task { try? await server.shutdown() } }
        let dir = try TempDir()
        defer { dir.cleanup() }
        let tokenFile = try dir.write("token", "file-token\n")
        let plugin = try dir.write("plugin.sh", """
            #!/bin/sh
            echo '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"exec-token"}}'
            """, executable: true)
        let exec = KubeConfig.ExecConfig(apiVersion: "client.authentication.k8s.io/v1beta1", command: plugin, args: nil, env: nil, installHint: nil, provideClusterInfo: false, interactiveMode: "Never")
        for (credential, user) in [(ClientConfiguration.Credential.token("static-token"), "alice"), (.tokenFile(tokenFile), "bob"), (.exec(exec), "carol")] {
            let client = Self.tokenClient(server, credential: credential)
            _ = try await client.api(ConfigMap.self).list()
            let last = await server.store.requestLog.last
            #expect(last?.user == user)
        }
    }

    @Test func execPluginClientCertificateIsUsedForTLS() async throws {
        let server = try await KubeTestServer.start()
        defer { Task { try? await server.shutdown() } }
        let dir = try TempDir()
        defer { dir.cleanup() }
        let credential = JSONValue.object([
            "apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
            "status": ["clientCertificateData": .string(TestPKI.clientCertificate), "clientKeyData": .string(TestPKI.clientKey)],
        ])
        let plugin = try dir.write("plugin.sh", "#!/bin/sh\ncat <<'JSON'\n\(credential.jsonString())\nJSON\n", executable: true)
        let exec = KubeConfig.ExecConfig(apiVersion: "client.authentication.k8s.io/v1", command: plugin, args: nil, env: nil, installHint: nil, provideClusterInfo: nil, interactiveMode: "Never")
        let client = Self.tokenClient(server, credential: .exec(exec))
        _ = try await client.api(Namespace.self).list()
        #expect(await server.store.requestLog.last?.user == "chill-admin")
    }

    @Test func expiredExecTokenIsRefetchedAfter401() async throws {
        let server = try await KubeTestServer.start(tokens: ["good": "dave"])
        defer { Task { try? await server.shutdown() } }
        let dir = try TempDir()
        defer { dir.cleanup() }
        let counter = dir.path + "/n"
        let plugin = try dir.write("plugin.sh", """
            #!/bin/sh
            if [ -f \(counter) ]; then t=good; else t=revoked; touch \(counter); fi
            echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"'$t'"}}'
            """, executable: true)
        let exec = KubeConfig.ExecConfig(apiVersion: nil, command: plugin, args: nil, env: nil, installHint: nil, provideClusterInfo: nil, interactiveMode: "Never")
        let client = Self.tokenClient(server, credential: .exec(exec))
        _ = try await client.api(ConfigMap.self).list()
        let users = await server.store.requestLog.map(\.status)
        #expect(users == [401, 200])
    }

    @Test func bogusTokenIsUnauthorizedAndAnonymousIsForbidden() async throws {
        let server = try await KubeTestServer.start(tokens: ["good": "erin"])
        defer { Task { try? await server.shutdown() } }
        await #expect {
            _ = try await Self.tokenClient(server, credential: .token("bogus")).api(ConfigMap.self).list()
        } throws: { error in
            let e = error as? KubeError
            return e?.code == 401 && e?.reason == .unauthorized && e?.message == "Unauthorized"
        }
        await #expect {
            _ = try await Self.tokenClient(server, credential: .none).api(ConfigMap.self).get("x")
        } throws: { error in
            let e = error as? KubeError
            return e?.code == 403 && e?.reason == .forbidden && e?.message.contains(#"User "system:anonymous" cannot get resource "configmaps""#) == true
        }
    }

    @Test func tlsVerificationFailuresAndOverrides() async throws {
        let server = try await KubeTestServer.start()
        defer { Task { try? await server.shutdown() } }
        // No CA: the self-signed test CA is not trusted.
        var settings = Self.adminSettings(server)
        settings.caData = nil
        settings.caFile = "/nonexistent-ca.crt"
        await #expect {
            _ = try await KubeClient(configuration: ClientConfiguration(transport: settings)).serverVersion()
        } throws: { error in (error as? KubeError)?.transport != nil }
        // insecure-skip-tls-verify accepts it.
        settings.insecureSkipTLSVerify = true
        _ = try await KubeClient(configuration: ClientConfiguration(transport: settings)).api(ConfigMap.self).list()
        // tls-server-name: verified against that name while connecting to 127.0.0.1.
        settings = Self.adminSettings(server)
        settings.tlsServerName = "localhost"
        _ = try await KubeClient(configuration: ClientConfiguration(transport: settings)).api(ConfigMap.self).list()
        settings.tlsServerName = "not-in-the-cert.example"
        await #expect {
            _ = try await KubeClient(configuration: ClientConfiguration(transport: settings)).api(ConfigMap.self).list()
        } throws: { error in (error as? KubeError)?.transport != nil }
    }

    @Test func unreachableServerSaysConnectionRefused() async throws {
        var settings = TransportSettings(server: "https://127.0.0.1:1")
        settings.connectTimeout = .seconds(2)
        await #expect {
            _ = try await KubeClient(configuration: ClientConfiguration(transport: settings)).serverVersion()
        } throws: { error in
            "\(error)" == "cannot reach https://127.0.0.1:1: connection refused"
        }
    }

    @Test func typedErrorsCarryTheServersStatus() async throws {
        let server = try await KubeTestServer.start()
        defer { Task { try? await server.shutdown() } }
        let configMaps = Self.adminClient(server).api(ConfigMap.self)
        await #expect {
            _ = try await configMaps.get("missing")
        } throws: { error in
            let e = error as? KubeError
            return e?.isNotFound == true && e?.message == #"configmaps "missing" not found"# && e?.status?.details?.kind == "configmaps"
        }
        #expect(try await configMaps.getIfExists("missing") == nil)
        _ = try await configMaps.create(ConfigMap(metadata: ObjectMeta(name: "dup")))
        await #expect {
            _ = try await configMaps.create(ConfigMap(metadata: ObjectMeta(name: "dup")))
        } throws: { error in
            let e = error as? KubeError
            return e?.isAlreadyExists == true && e?.code == 409 && e?.message == #"configmaps "dup" already exists"#
        }
        let deployments = Self.adminClient(server).api(Deployment.self)
        await #expect {
            _ = try await deployments.get("nope")
        } throws: { error in (error as? KubeError)?.message == #"deployments.apps "nope" not found"# }
    }

    @Test func staleUpdateConflictsAndRetryOnConflictConverges() async throws {
        let server = try await KubeTestServer.start()
        defer { Task { try? await server.shutdown() } }
        let configMaps = Self.adminClient(server).api(ConfigMap.self)
        let original = try await configMaps.create(ConfigMap(metadata: ObjectMeta(name: "counter"), data: ["n": "0"]))
        var first = original
        first.data = ["n": "first"]
        _ = try await configMaps.replace(first)
        var stale = original
        stale.data = ["n": "stale"]
        await #expect {
            _ = try await configMaps.replace(stale)
        } throws: { error in
            let e = error as? KubeError
            return e?.isConflict == true && e?.message == #"Operation cannot be fulfilled on configmaps "counter": the object has been modified; please apply your changes to the latest version and try again"#
        }
        // Many concurrent read-modify-write increments: every one lands despite conflicts.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    try await configMaps.update("counter", attempts: 50) { cm in
                        let n = Int(cm.data?["n"] ?? "") ?? 0
                        cm.data = ["n": String(n + 1)]
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await configMaps.get("counter").data?["n"] == "8")
    }

    @Test func pagingFollowsContinueTokens() async throws {
        let server = try await KubeTestServer.start()
        defer { Task { try? await server.shutdown() } }
        let configMaps = Self.adminClient(server).api(ConfigMap.self)
        for i in 0..<7 {
            _ = try await configMaps.create(ConfigMap(metadata: ObjectMeta(name: "page-\(i)", labels: ["even": i % 2 == 0 ? "yes" : "no"])))
        }
        let page = try await configMaps.list(ListOptions(limit: 3))
        #expect(page.items.count == 3)
        #expect(page.metadata.continue != nil)
        #expect(page.metadata.remainingItemCount == 4)
        let all = try await configMaps.listAll(ListOptions(limit: 3))
        #expect(all.items.compactMap(\.metadata.name) == (0..<7).map { "page-\($0)" })
        let even = try await configMaps.listAll(ListOptions(labelSelector: "even=yes", limit: 2))
        #expect(even.items.compactMap(\.metadata.name) == ["page-0", "page-2", "page-4", "page-6"])
        let byName = try await configMaps.list(ListOptions(fieldSelector: "metadata.name=page-5"))
        #expect(byName.items.map(\.metadata.name) == ["page-5"])
    }

    @Test func patchesApplyAndDelete() async throws {
        let server = try await KubeTestServer.start()
        defer { Task { try? await server.shutdown() } }
        let client = Self.adminClient(server)
        let configMaps = client.api(ConfigMap.self)
        let applied = try await configMaps.apply(["metadata": ["name": "ssa"], "data": ["a": "1"]], fieldManager: "kubectl-chill")
        #expect(applied.data == ["a": "1"])
        let request = await server.store.requestLog.last
        #expect(request?.header("Content-Type") == "application/apply-patch+yaml")
        #expect(request?.path.contains("fieldManager=kubectl-chill") == true)
        _ = try await configMaps.patch("ssa", ["data": ["b": "2"]])
        let patched = try await configMaps.patch("ssa", [["op": "remove", "path": "/data/a"]], type: .jsonPatch)
        #expect(patched.data == ["b": "2"])
        #expect(try await configMaps.delete("ssa") == nil)
        #expect(try await configMaps.getIfExists("ssa") == nil)
        try await configMaps.deleteIfExists("ssa")
    }

    @Test func deploymentScaleSubresource() async throws {
        let server = try await KubeTestServer.start()
        defer { Task { try? await server.shutdown() } }
        let deployments = Self.adminClient(server).api(Deployment.self)
        let template = PodTemplateSpec(metadata: ObjectMeta(labels: ["app": "vllm"]), spec: ["containers": [["name": "vllm", "image": "vllm/vllm-openai:v0.11.0"]]])
        _ = try await deployments.create(Deployment(metadata: ObjectMeta(name: "vllm"), spec: .init(replicas: 0, selector: LabelSelector(matchLabels: ["app": "vllm"]), template: template)))
        let zero = try await deployments.getScale("vllm")
        #expect(zero.spec.replicas == nil)
        #expect(zero.status?.selector == "app=vllm")
        let scaled = try await deployments.scale("vllm", replicas: 1)
        #expect(scaled.spec.replicas == 1)
        #expect(try await deployments.get("vllm").spec?.replicas == 1)
    }

    @Test func statusSubresourceChangesOnlyStatus() async throws {
        let server = try await KubeTestServer.start()
        defer { Task { try? await server.shutdown() } }
        let deployments = Self.adminClient(server).api(Deployment.self)
        let template = PodTemplateSpec(metadata: ObjectMeta(labels: ["app": "s"]), spec: ["containers": [["name": "c", "image": "i:1"]]])
        _ = try await deployments.create(Deployment(metadata: ObjectMeta(name: "s"), spec: .init(replicas: 0, selector: LabelSelector(matchLabels: ["app": "s"]), template: template)))
        let updated = try await deployments.patchStatus("s", ["status": ["readyReplicas": 3], "spec": ["replicas": 5]])
        #expect(updated.status?.readyReplicas == 3)
        #expect(updated.spec?.replicas == 0)
    }
}
