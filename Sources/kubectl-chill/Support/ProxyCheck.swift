import Shared

/// Whether chill-server runs in the namespace: `switch` and `wait` say so up front instead of waiting
/// for a scale-up that cannot come. A user who may not read Deployments is not stopped (nil).
enum ProxyCheck {
    /// Refuses when the namespace has no chill-server Deployment (no chill install there).
    static func requireInstalled(_ client: KubeClient, command: String) async throws {
        guard case .absent = try await state(client) else { return }
        throw await notInstalled(client, command: command)
    }

    /// Refuses when chill-server is absent or has no ready replica.
    static func requireRunning(_ client: KubeClient, model: String, command: String) async throws {
        switch try await state(client) {
        case .absent: throw await notInstalled(client, command: command)
        case .notReady:
            let ns = client.namespace
            throw CLIError(
                "chill-server in namespace \(ns) has 0 ready replicas, so nothing will scale \"\(model)\" up",
                hint: "see why: kubectl -n \(ns) describe deployment \(ChillContract.proxyDeployment)")
        case .running, .unknown: return
        }
    }

    enum State { case absent, notReady, running, unknown }

    static func state(_ client: KubeClient) async throws -> State {
        do {
            guard let proxy = try await client.api(Deployment.self).getIfExists(ChillContract.proxyDeployment) else { return .absent }
            return (proxy.status?.readyReplicas ?? 0) > 0 ? .running : .notReady
        } catch let error as KubeError where error.code == 403 {
            return .unknown
        }
    }

    static func notInstalled(_ client: KubeClient, command: String) async -> CLIError {
        let ns = client.namespace
        let elsewhere = (try? await InstallLocator.installedNamespace(client)) ?? nil
        let hint = elsewhere.map { "chill is installed in \($0): kubectl chill \(command) -n \($0)" }
            ?? "install chill with: kubectl chill install, or pass -n with chill's namespace"
        return CLIError("chill is not installed in namespace \(ns) (no Deployment \(ChillContract.proxyDeployment))", hint: hint)
    }
}
