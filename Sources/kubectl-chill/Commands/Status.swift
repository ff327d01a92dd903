import ArgumentParser
import Shared
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension KubectlChill {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the proxy, the active model, each model's idle timer and the GPU-hours saved.",
            discussion: """
                Reads the chill-server Deployment, the chill-state ConfigMap and the VLLMModels (three requests, sent at once; no watches), so it returns as fast as the API server answers.

                With MODEL, the table and the savings are about that model only.

                GPU-hours freed = Σ status.scaledDownSeconds × GPUs per replica / 3600, over all models. The last-24h figure is shown only when chill-server reports status.scaledDownSecondsLast24h for every model; otherwise it says it is not reported rather than guessing.

                Examples:
                  kubectl chill status
                  kubectl chill status qwen
                  kubectl chill status -n my-chill
                  kubectl chill status -o json
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "Only this model (VLLMModel name); default: every model.", completion: .shellCommand(KubectlChill.Completion.modelNamesCommand))
        var model: String?

        @Option(name: .shortAndLong, help: "Output format: table, json or yaml.")
        var output: ReportFormat = .table

        func run() async throws {
            let report = try await global.withClient { client in
                async let proxy = client.api(Deployment.self).getIfExists(ChillContract.proxyDeployment)
                async let state = ChillState.read(client)
                async let models = Self.models(client)
                var all = try await models
                if let model {
                    guard all.contains(where: { $0.0.name == model }) else { throw ModelLookup.unknown(model, known: all.map(\.0.name)) }
                    all = all.filter { $0.0.name == model }
                }
                return try await StatusReport(namespace: client.namespace, proxy: proxy, state: state, models: all, now: CLIClock.now)
            }
            if output.format.isStructured { printStructured(report.json, as: output.format) } else { Console.current.out(report.text) }
        }

        /// Models with `status.scaledDownSecondsLast24h` (nil when chill-server has not written it).
        static func models(_ client: KubeClient) async throws -> [(VLLMModel, Double?)] {
            try await ModelLookup.all(client).map { ($0, $0.status?.scaledDownSecondsLast24h) }
        }
    }
}

/// What `kubectl chill status` shows, computed from what the three reads returned.
struct StatusReport {
    struct Proxy {
        var found: Bool
        var readyReplicas = 0
        var replicas = 0
        var version: String?
    }

    struct ModelLine {
        var model: VLLMModel
        var idleSeconds: Double?
        var gpuHoursFreed: Double
        var gpuHoursFreedLast24h: Double?
    }

    var namespace: String
    var proxy: Proxy
    var state: ChillState
    var models: [ModelLine]
    var now: Date

    init(namespace: String, proxy deployment: Deployment?, state: ChillState, models: [(VLLMModel, Double?)], now: Date) {
        self.namespace = namespace
        self.state = state
        self.now = now
        if let deployment {
            proxy = Proxy(
                found: true, readyReplicas: deployment.status?.readyReplicas ?? 0, replicas: deployment.spec?.replicas ?? 0,
                version: Self.version(of: deployment))
        } else {
            proxy = Proxy(found: false)
        }
        self.models = models.map { model, last24h in
            let gpus = Double(model.spec.effectiveGPUs)
            return ModelLine(
                model: model, idleSeconds: model.idleSeconds(now: now),
                gpuHoursFreed: (model.status?.scaledDownSeconds ?? 0) * gpus / 3600,
                gpuHoursFreedLast24h: last24h.map { $0 * gpus / 3600 })
        }
    }

    /// The `app.kubernetes.io/version` label, else the tag (or short digest) of the first container's image.
    static func version(of deployment: Deployment) -> String? {
        if let label = deployment.metadata.labels?["app.kubernetes.io/version"], !label.isEmpty { return label }
        guard let image = deployment.spec?.template.spec?["containers"]?.arrayValue?.first?["image"]?.stringValue else { return nil }
        if let at = image.firstIndex(of: "@") { return String(image[image.index(after: at)...].prefix(19)) }
        let lastComponent = image.split(separator: "/").last ?? Substring(image)
        guard let colon = lastComponent.lastIndex(of: ":") else { return nil }
        return String(lastComponent[lastComponent.index(after: colon)...])
    }

    var gpuHoursFreed: Double { models.reduce(0) { $0 + $1.gpuHoursFreed } }
    /// Only when every model reports its last-24h figure: a partial sum would understate the savings.
    var gpuHoursFreedLast24h: Double? {
        guard !models.isEmpty else { return 0 }
        var sum = 0.0
        for line in models {
            guard let value = line.gpuHoursFreedLast24h else { return nil }
            sum += value
        }
        return sum
    }

    static let last24hNotReported = "not reported (needs status.scaledDownSecondsLast24h from chill-server)"

    var text: String {
        var lines: [String] = []
        if proxy.found {
            let health = proxy.readyReplicas >= max(proxy.replicas, 1) ? "ready" : "NOT ready"
            lines.append("Proxy:     \(ChillContract.proxyDeployment) \(proxy.readyReplicas)/\(proxy.replicas) \(health), version \(proxy.version ?? "unknown") (namespace \(namespace))")
        } else {
            lines.append("Proxy:     not installed (no Deployment \(ChillContract.proxyDeployment) in namespace \(namespace)) — install with: kubectl chill install")
        }
        if let active = state.activeModel {
            let since = state.switchedAt.map { " (switched \(shortDuration(seconds: now.timeIntervalSince($0))) ago)" } ?? ""
            let exists = models.contains { $0.model.name == active } ? "" : " — no such model; pick one with: kubectl chill switch MODEL"
            lines.append("Active:    \(active)\(since)\(exists)")
        } else {
            lines.append("Active:    none (choose one with: kubectl chill switch MODEL)")
        }
        lines.append("")
        if models.isEmpty {
            lines.append("No models found. Create one with: kubectl chill create NAME --model HF_ID")
        } else {
            var table = Table(["NAME", "PHASE", "READY", "GPUS", "IDLE", "GPU-HOURS FREED"])
            for line in models {
                let model = line.model
                table.add([
                    model.name, model.phaseText, "\(model.readyReplicas)/\(model.status?.replicas ?? 0)",
                    String(model.spec.effectiveGPUs), idleText(line), Self.hours(line.gpuHoursFreed),
                ])
            }
            lines.append(table.rendered)
        }
        lines.append("")
        let last24h = gpuHoursFreedLast24h.map { "\(Self.hours($0)) GPU-hours" } ?? Self.last24hNotReported
        lines.append("Saved:     \(Self.hours(gpuHoursFreed)) GPU-hours freed since install; last 24h: \(last24h)")
        return lines.joined(separator: "\n")
    }

    private func idleText(_ line: ModelLine) -> String {
        let model = line.model
        let timeout = GoDuration.formatCompact(model.spec.effectiveIdleTimeout)
        if let idle = line.idleSeconds {
            return model.spec.scalesToZero ? "\(shortDuration(seconds: idle)) of \(timeout)" : "\(shortDuration(seconds: idle)) (min \(model.spec.effectiveMinReplicas) kept)"
        }
        guard let phase = model.status?.phase else { return "-" }
        switch phase {
        case .waking: return "waking"
        case .draining: return "draining"
        case .failed: return "failed: " + (model.status?.message ?? "see kubectl describe vllmmodel \(model.name)")
        case .scaledDown: return "-"
        case .ready: return "-"
        }
    }

    /// One decimal: `12.5`.
    static func hours(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }

    /// Every key is always present; a value chill-server has not reported is null.
    var json: JSONValue {
        let proxyJSON: JSONValue = [
            "deployment": .string(ChillContract.proxyDeployment), "found": .bool(proxy.found),
            "readyReplicas": proxy.found ? .int(proxy.readyReplicas) : .null,
            "replicas": proxy.found ? .int(proxy.replicas) : .null,
            "version": proxy.version.map(JSONValue.string) ?? .null,
        ]
        let active: JSONValue = [
            "name": state.activeModel.map(JSONValue.string) ?? .null,
            "switchedAt": state.switchedAt.map { .string(RFC3339.format($0)) } ?? .null,
        ]
        let modelsJSON: [JSONValue] = models.map { line in
            let model = line.model
            return [
                "name": .string(model.name), "modelName": .string(model.spec.modelName),
                "phase": model.status?.phase.map { .string($0.rawValue) } ?? .null,
                "readyReplicas": .int(model.readyReplicas), "replicas": .int(model.status?.replicas ?? 0),
                "gpus": .int(model.spec.effectiveGPUs),
                "idleTimeoutSeconds": .double(model.spec.effectiveIdleTimeout.chillSeconds),
                "scaledDownSeconds": .double(model.status?.scaledDownSeconds ?? 0),
                "gpuHoursFreed": .double(Self.round2(line.gpuHoursFreed)),
                "idleSeconds": line.idleSeconds.map { .double($0.rounded()) } ?? .null,
                "lastWakeSeconds": model.status?.lastWake?.seconds.map(JSONValue.double) ?? .null,
                "gpuHoursFreedLast24h": line.gpuHoursFreedLast24h.map { .double(Self.round2($0)) } ?? .null,
                "message": model.status?.message.map(JSONValue.string) ?? .null,
            ]
        }
        var savings: JSONValue = [
            "gpuHoursFreedSinceInstall": .double(Self.round2(gpuHoursFreed)),
            "gpuHoursFreedLast24h": gpuHoursFreedLast24h.map { .double(Self.round2($0)) } ?? .null,
        ]
        if gpuHoursFreedLast24h == nil { savings["last24hNote"] = .string(Self.last24hNotReported) }
        return [
            "namespace": .string(namespace), "proxy": proxyJSON, "activeModel": active,
            "models": .array(modelsJSON), "savings": savings,
        ]
    }

    static func round2(_ value: Double) -> Double { (value * 100).rounded() / 100 }
}
