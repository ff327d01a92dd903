import Shared

/// `create`'s checks against the cluster and against chill's own vLLM flags.
enum CreateChecks {
    /// The `vllm serve` flags chill sets itself (an --extra-arg repeating one overrides it), with what to do.
    static let chillFlags: [(flag: String, advice: String)] = [
        ("--model", "use --model instead"),
        ("--served-model-name", "use --served-model-name instead"),
        ("--port", "chill-server sends requests to the port it set, so they may not reach the model"),
    ]

    static func overriddenFlags(_ extraArgs: [String]) -> [String] {
        extraArgs.compactMap { arg in
            guard let (flag, advice) = chillFlags.first(where: { arg == $0.flag || arg.hasPrefix($0.flag + "=") }) else { return nil }
            return "--extra-arg \(arg) overrides the \(flag) chill sets — \(advice)"
        }
    }

    /// Two models served under one name could not be told apart by the proxy: refused.
    static func servedNameIsFree(_ model: VLLMModel, _ client: KubeClient) async throws {
        let others = try await ModelLookup.all(client).filter { $0.name != model.name }
        guard let other = others.first(where: { $0.servedName == model.servedName }) else { return }
        throw CLIError(
            "model \"\(other.name)\" already serves the name \"\(model.servedName)\", so requests for it could not be routed",
            hint: "pick another --served-model-name; nothing was sent")
    }

    /// A warning when the Secret does not exist; nil when it does or the user may not read Secrets.
    static func missingSecret(_ name: String, _ client: KubeClient) async -> String? {
        do {
            if try await client.api(Secret.self).getIfExists(name) != nil { return nil }
        } catch {
            return nil
        }
        return "Secret \"\(name)\" does not exist in namespace \(client.namespace); the model's pods will not start until it does"
    }
}
