import Foundation
import Testing
@testable import Shared

@Suite struct KubeConfigTests {
    static let first = """
        apiVersion: v1
        kind: Config
        current-context: dev
        clusters:
        - name: dev-cluster
          cluster:
            server: https://dev.example:6443
            certificate-authority: certs/ca.crt
        contexts:
        - name: dev
          context: {cluster: dev-cluster, user: dev-user, namespace: team-a}
        users:
        - name: dev-user
          user:
            client-certificate: certs/client.crt
            client-key: /abs/client.key
        """
    static let second = """
        apiVersion: v1
        kind: Config
        current-context: prod
        clusters:
        - name: dev-cluster
          cluster: {server: https://shadowed.example:6443}
        - name: prod-cluster
          cluster: {server: https://prod.example, insecure-skip-tls-verify: true, tls-server-name: api.prod, proxy-url: http://proxy:3128}
        contexts:
        - name: prod
          context: {cluster: prod-cluster, user: prod-user}
        - name: dev
          context: {cluster: prod-cluster, user: prod-user}
        users:
        - name: prod-user
          user: {tokenFile: token}
        """

    @Test func kubeconfigListMergesWithFirstFileWinning() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let a = try dir.write("a/config", Self.first)
        let b = try dir.write("b/config", Self.second)
        let merged = try KubeConfig.load(explicit: nil, environment: ["KUBECONFIG": "\(a):\(dir.path)/missing:\(b)"])
        #expect(merged.currentContext == "dev")
        #expect(merged.clusters.map(\.name) == ["dev-cluster", "prod-cluster"])
        #expect(merged.clusters[0].value.server == "https://dev.example:6443")
        #expect(merged.contexts.first { $0.name == "dev" }?.value.user == "dev-user")

        let dev = try ClientConfiguration(kubeConfig: merged)
        #expect(dev.namespace == "team-a")
        #expect(dev.transport.caFile == "\(dir.path)/a/certs/ca.crt")
        #expect(dev.transport.clientCertificateFile == "\(dir.path)/a/certs/client.crt")
        #expect(dev.transport.clientKeyFile == "/abs/client.key")

        let prod = try ClientConfiguration(kubeConfig: merged, context: "prod")
        #expect(prod.namespace == "default")
        #expect(prod.credential == .tokenFile("\(dir.path)/b/token"))
        #expect(prod.transport.insecureSkipTLSVerify)
        #expect(prod.transport.tlsServerName == "api.prod")
        #expect(prod.transport.proxyURL == "http://proxy:3128")
        #expect(prod.transport.requestURL(path: "/api") == "https://api.prod:443/api")
        #expect(prod.transport.connectToOverride == "api.prod:443:prod.example:443")
    }

    @Test func explicitKubeconfigWinsOverTheEnvironment() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let b = try dir.write("b", Self.second)
        #expect(KubeConfig.paths(explicit: b, environment: ["KUBECONFIG": "/x:/y"]) == [b])
        #expect(KubeConfig.paths(explicit: nil, environment: ["HOME": "/home/u"]) == ["/home/u/.kube/config"])
        #expect(throws: KubeConfigError.self) { try KubeConfig.load(explicit: "\(dir.path)/nope", environment: [:]) }
    }

    @Test func unknownContextNamesTheKnownOnes() throws {
        let merged = try KubeConfig.parse(Self.second, directory: "/tmp")
        #expect {
            try ClientConfiguration(kubeConfig: merged, context: "staging")
        } throws: { error in
            "\(error)" == #"context "staging" not found in the kubeconfig (known: prod, dev)"#
        }
    }

    @Test func inlineDataIsDecodedAndBadBase64IsNamed() throws {
        let text = """
            current-context: c
            clusters: [{name: k, cluster: {server: "https://127.0.0.1:6443", certificate-authority-data: \("CA PEM".base64)}}]
            contexts: [{name: c, context: {cluster: k, user: u}}]
            users: [{name: u, user: {client-certificate-data: \("CERT".base64), client-key-data: "!!notbase64", token: abc}}]
            """
        let config = try KubeConfig.parse(text, directory: nil)
        #expect(throws: KubeConfigError("client-key-data in the kubeconfig is not valid base64")) {
            try ClientConfiguration(kubeConfig: config)
        }
    }

    @Test func inClusterReadsTheServiceAccount() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try dir.write("token", "tok\n")
        try dir.write("ca.crt", "CA")
        try dir.write("namespace", "chill-system")
        let config = try ClientConfiguration.inCluster(
            environment: ["KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"], serviceAccountDirectory: dir.path)
        #expect(config.transport.server == "https://10.0.0.1:443")
        #expect(config.transport.caFile == dir.path + "/ca.crt")
        #expect(config.namespace == "chill-system")
        #expect(config.credential == .tokenFile(dir.path + "/token"))
        #expect(throws: KubeConfigError.self) { try ClientConfiguration.inCluster(environment: [:], serviceAccountDirectory: dir.path) }
    }

    @Test func serverURLsAreParsedWithPortsPrefixesAndIPv6() {
        var s = TransportSettings(server: "https://[::1]:6443/k8s/clusters/c-1/")
        #expect(s.requestURL(path: "/api/v1/pods") == "https://[::1]:6443/k8s/clusters/c-1/api/v1/pods")
        s = TransportSettings(server: "http://localhost")
        #expect(s.requestURL(path: "/version") == "http://localhost:80/version")
    }
}

@Suite struct CredentialProviderTests {
    @Test func tokenFileIsReReadAfterAMinute() async throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let file = try dir.write("token", "one\n")
        let clock = TestNow()
        let provider = CredentialProvider(credential: .tokenFile(file), now: clock.now)
        #expect(try await provider.current().authorization == "Bearer one")
        try dir.write("token", "two")
        #expect(try await provider.current().authorization == "Bearer one")
        clock.advance(61)
        #expect(try await provider.current().authorization == "Bearer two")
    }

    @Test func execPluginCredentialIsCachedUntilExpiry() async throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let counter = dir.path + "/calls"
        let script = try dir.write("plugin.sh", """
            #!/bin/sh
            echo x >> \(counter)
            n=$(wc -l < \(counter) | tr -d ' ')
            # The plugin gets its env and the cluster info.
            case "$KUBERNETES_EXEC_INFO" in *'"server":"https://k"'*) ;; *) echo "no cluster info" >&2; exit 3;; esac
            [ "$PLUGIN_MODE" = test ] || exit 4
            echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"tok-'$n'","expirationTimestamp":"2030-01-01T00:10:00Z"}}'
            """, executable: true)
        let exec = KubeConfig.ExecConfig(
            apiVersion: "client.authentication.k8s.io/v1", command: script, args: ["--flag"],
            env: [.init(name: "PLUGIN_MODE", value: "test")], installHint: nil, provideClusterInfo: true, interactiveMode: "Never")
        let clock = TestNow(start: ISO8601DateFormatter().date(from: "2030-01-01T00:00:00Z")!)
        let provider = CredentialProvider(credential: .exec(exec), clusterInfo: ["server": "https://k"], environment: ["PATH": "/usr/bin:/bin"], now: clock.now)
        #expect(try await provider.current().authorization == "Bearer tok-1")
        #expect(try await provider.current().authorization == "Bearer tok-1")
        clock.advance(11 * 60)
        #expect(try await provider.current().authorization == "Bearer tok-2")
        #expect(await provider.invalidate())
        #expect(try await provider.current().authorization == "Bearer tok-3")
    }

    @Test func missingExecCommandShowsTheInstallHint() async throws {
        let exec = KubeConfig.ExecConfig(
            apiVersion: "client.authentication.k8s.io/v1beta1", command: "chill-no-such-plugin", args: nil, env: nil,
            installHint: "install it with: brew install chill-no-such-plugin", provideClusterInfo: nil, interactiveMode: "Never")
        let provider = CredentialProvider(credential: .exec(exec), environment: ["PATH": "/usr/bin:/bin"])
        await #expect(throws: KubeConfigError("exec plugin: executable chill-no-such-plugin not found — install it with: brew install chill-no-such-plugin")) {
            try await provider.current()
        }
    }

    @Test func failingExecPluginIsReported() async throws {
        let exec = KubeConfig.ExecConfig(command: "false", args: nil, env: nil, installHint: nil, provideClusterInfo: nil, interactiveMode: "Never")
        let provider = CredentialProvider(credential: .exec(exec), environment: ["PATH": "/usr/bin:/bin"])
        await #expect(throws: KubeConfigError("exec plugin false failed with exit code 1")) { try await provider.current() }
    }
}

/// A settable clock for credential expiry.
final class TestNow: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Date
    init(start: Date = Date(timeIntervalSince1970: 1_800_000_000)) { value = start }
    var now: @Sendable () -> Date { { [self] in lock.withLock { value } } }
    func advance(_ seconds: TimeInterval) { lock.withLock { value += seconds } }
}
