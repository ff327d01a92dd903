import ArgumentParser
import Shared
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// "Now" for ages and idle timers. Tests pin it with `CLIClock.$fixedNow.withValue(date) { … }`.
enum CLIClock {
    @TaskLocal static var fixedNow: Date?
    static var now: Date { fixedNow ?? Date() }
}

/// Model lookups shared by the model commands, with the one-line errors they print.
enum ModelLookup {
    /// Every VLLMModel, sorted by name. A cluster without the CRD is an error that says to install chill.
    static func all(_ client: KubeClient, labelSelector: String? = nil) async throws -> [VLLMModel] {
        do {
            return try await client.api(VLLMModel.self).listAll(ListOptions(labelSelector: labelSelector)).items.sorted { ($0.metadata.name ?? "") < ($1.metadata.name ?? "") }
        } catch let error as KubeError where error.isNotFound {
            throw notInstalled
        }
    }

    static var notInstalled: CLIError {
        CLIError("the VLLMModel resource (\(VLLMModelCRD.name)) is not installed in this cluster", hint: "install chill with: kubectl chill install")
    }

    /// The model, or an error that names the ones that exist.
    static func get(_ name: String, _ client: KubeClient) async throws -> VLLMModel {
        do { return try await client.api(VLLMModel.self).get(name) } catch let error as KubeError where error.isNotFound {
            throw try await unknown(name, client)
        }
    }

    /// `model "x" not found — known models: a, b` (or how to create one when there are none).
    static func unknown(_ name: String, _ client: KubeClient) async throws -> CLIError {
        let names = try await all(client).compactMap(\.metadata.name)
        return unknown(name, known: names)
    }

    static func unknown(_ name: String, known names: [String]) -> CLIError {
        if names.isEmpty {
            return CLIError("model \"\(name)\" not found: there are no models", hint: "create one with: kubectl chill create \(name) --model HF_ID")
        }
        return CLIError("model \"\(name)\" not found", hint: "known models: \(names.joined(separator: ", "))")
    }

    /// Checks a model name the way the API server and chill-server's objects need it: a DNS-1123 label
    /// of at most 58 characters (so `vllm-<name>` is a valid Deployment and Service name).
    static func nameProblem(_ name: String) -> String? {
        if name.isEmpty { return "a model name must not be empty" }
        if name.count > 58 { return "model name \"\(name)\" is longer than 58 characters" }
        let ok = (try? Regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").wholeMatch(in: name)) != nil
        return ok ? nil : "model name \"\(name)\" must consist of lower-case letters, digits and '-', and start and end with a letter or digit"
    }
}

/// The `chill-state` ConfigMap: which model is active.
struct ChillState: Sendable, Equatable {
    var activeModel: String?
    var switchedAt: Date?

    /// Reads the state; an absent ConfigMap (or namespace) means no model was ever switched to.
    static func read(_ client: KubeClient) async throws -> ChillState {
        guard let map = try await client.api(ConfigMap.self).getIfExists(ChillContract.stateConfigMap) else { return ChillState() }
        let active = map.data?[ChillContract.activeModelKey].flatMap { $0.isEmpty ? nil : $0 }
        return ChillState(activeModel: active, switchedAt: map.data?[ChillContract.switchedAtKey].flatMap(RFC3339.parse))
    }

    /// The state, or nil when the user may not read ConfigMaps in the namespace (403): `list` still works.
    static func readIfAllowed(_ client: KubeClient) async throws -> ChillState? {
        do { return try await read(client) } catch let error as KubeError where error.code == 403 { return nil }
    }

    /// Server-side apply of `data.activeModel` and `data.switchedAt` (field manager `kubectl-chill`).
    static func apply(activeModel: String, at date: Date, _ client: KubeClient) async throws {
        let object: JSONValue = [
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": [
                "name": .string(ChillContract.stateConfigMap), "namespace": .string(client.namespace),
                "labels": ["app.kubernetes.io/name": "chill", "app.kubernetes.io/part-of": "chill"],
            ],
            "data": [
                ChillContract.activeModelKey: .string(activeModel),
                ChillContract.switchedAtKey: .string(RFC3339.format(date)),
            ],
        ]
        do {
            _ = try await client.api(ConfigMap.self).apply(object, fieldManager: ChillContract.fieldManager, force: true)
        } catch let error as KubeError where error.isNotFound {
            throw CLIError(
                "namespace \"\(client.namespace)\" does not exist", hint: "install chill with: kubectl chill install, or pass -n with chill's namespace")
        }
    }
}

extension VLLMModel {
    var name: String { metadata.name ?? "" }
    var readyReplicas: Int { status?.readyReplicas ?? 0 }
    /// `status.phase` as printed: `Unknown` before chill-server has written a status (not ScaledDown,
    /// which would claim it did).
    var phaseText: String { status?.phase?.rawValue ?? "Unknown" }
    /// Serving: phase Ready with at least one ready replica (what `wait` waits for).
    var isServing: Bool { phase == .ready && readyReplicas >= 1 }

    /// Seconds since the last request started or ended, while the model is serving; nil otherwise.
    func idleSeconds(now: Date) -> Double? {
        guard isServing, let text = status?.lastActivityTime, let last = RFC3339.parse(text) else { return nil }
        return max(0, now.timeIntervalSince(last))
    }

    /// This object as printed by `-o json|yaml`: as stored, without managedFields (as kubectl does).
    var printable: JSONValue {
        var value = (try? JSONValue(encoding: self)) ?? .null
        value["metadata"]?["managedFields"] = nil
        return value
    }
}

/// A wake's length, to the nearest second, in kubectl's duration format (`42s`, `2m35s`, `12m`).
func wakeDuration(seconds: Double) -> String { humanDuration(seconds: max(0, seconds).rounded()) }

/// `--output` for commands that print models: the table forms and json/yaml.
extension OutputFormat {
    var isStructured: Bool { self == .json || self == .yaml }
}

/// Prints one structured value (not a List) as JSON or YAML.
func printStructured(_ value: JSONValue, as format: OutputFormat) {
    switch format {
    case .json: Console.current.out(KubectlJSON.format(value))
    case .yaml: Console.current.out(YAML.encode(value.wholeNumbersAsIntegers), terminator: "")
    case .table, .wide: break
    }
}

extension JSONValue {
    /// An integer or floating-point value as a Double.
    var numberValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }
}

/// Start/stop intents: a merge patch of annotations on the VLLMModel, acted on by chill-server.
enum ModelIntent {
    enum StopMode: Sendable {
        case graceful, force
        /// The value of `chill.dev/stop-mode`.
        var annotationValue: String { self == .graceful ? ChillContract.stopModeGraceful : ChillContract.stopModeForce }
    }

    /// Writes `chill.dev/requested-state` (+ `requested-at`, and `stop-mode` for a stop; a start removes it).
    /// An unknown model is an error naming the known ones.
    @discardableResult
    static func request(_ state: String, stopMode: StopMode? = nil, model name: String, at date: Date, _ client: KubeClient) async throws -> VLLMModel {
        let annotations: JSONValue = [
            ChillContract.requestedStateAnnotation: .string(state),
            ChillContract.requestedAtAnnotation: .string(RFC3339.format(date)),
            ChillContract.stopModeAnnotation: stopMode.map { .string($0.annotationValue) } ?? .null,
        ]
        do {
            return try await client.api(VLLMModel.self).patch(name, ["metadata": ["annotations": annotations]])
        } catch let error as KubeError where error.isNotFound {
            throw try await ModelLookup.unknown(name, client)
        }
    }
}
