import ArgumentParser
import Shared
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension KubectlChill {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List models: phase, readiness, which one is active, idle time and last wake.",
            discussion: """
                One row per VLLMModel. ACTIVE marks the model chosen with `kubectl chill switch`; IDLE counts from the last request while the model serves (`-` otherwise); LAST WAKE is how long the most recent scale-from-zero took. PHASE is Unknown until chill-server has written the model's status. Without the right to read ConfigMaps in the namespace, ACTIVE shows ? and a notice says why.

                Examples:
                  kubectl chill list
                  kubectl chill ls -o wide
                  kubectl chill list qwen llama
                  kubectl chill list -l team=ml --no-headers
                  kubectl chill list -o json | jq '.items[].metadata.name'
                """,
            aliases: ["ls"])

        @OptionGroup var global: GlobalOptions

        @Argument(help: "Only these models (VLLMModel names); default: all.", completion: .shellCommand(KubectlChill.Completion.modelNamesCommand))
        var names: [String] = []

        @Option(name: [.customShort("l"), .long], help: "Only models whose labels match this selector, e.g. team=ml or 'tier in (a,b)'.")
        var selector: String?

        @Option(name: .shortAndLong, help: "Output format: table, wide (adds GPUS and IMAGE), json or yaml.")
        var output: OutputFormat = .table

        @Flag(help: "Print the table without its header row.")
        var noHeaders = false

        func run() async throws {
            let (all, state) = try await global.withClient { client in
                async let models = ModelLookup.all(client, labelSelector: selector)
                async let state = ChillState.readIfAllowed(client)
                return try await (models, state)
            }
            // As `kubectl get a b`: the ones found are printed, then the missing ones are an error.
            let models = names.isEmpty ? all : all.filter { names.contains($0.name) }
            let missing = names.filter { name in !all.contains { $0.name == name } }
            try print(models, state: state)
            if let first = missing.first {
                throw missing.count == 1 ? ModelLookup.unknown(first, known: all.map(\.name))
                    : CLIError("models \(missing.map { "\"\($0)\"" }.joined(separator: ", ")) not found", hint: "known models: \(all.map(\.name).joined(separator: ", "))")
            }
        }

        func print(_ models: [VLLMModel], state: ChillState?) throws {
            if output.isStructured {
                // As kubectl get: names that were all missing print nothing, only the error.
                if names.isEmpty || !models.isEmpty { output.printObjects(models.map(\.printable), single: names.count == 1) }
                return
            }
            guard !models.isEmpty else {
                if names.isEmpty {
                    Console.current.err(selector == nil ? "No models found. Create one with: kubectl chill create NAME --model HF_ID" : "No models match the selector \(selector!).")
                }
                return
            }
            if state == nil {
                Console.current.err("notice: ACTIVE shows ? — you may not read ConfigMap \(ChillContract.stateConfigMap) in namespace \(global.namespace) (ask for get on configmaps there)")
            }
            let table = Self.table(models, active: state.map { .known($0.activeModel) } ?? .unreadable, wide: output == .wide, now: CLIClock.now)
            Console.current.out(noHeaders ? table.renderedRows : table.rendered)
        }

        /// The active model as far as the user may know it.
        enum Active { case known(String?), unreadable }

        static func table(_ models: [VLLMModel], active: Active, wide: Bool, now: Date) -> Table {
            var table = Table(["NAME", "MODEL", "PHASE", "READY", "ACTIVE", "IDLE", "LAST WAKE"] + (wide ? ["GPUS", "IMAGE"] : []))
            for model in models {
                var row = [
                    model.name,
                    model.spec.modelName,
                    model.phaseText,
                    "\(model.readyReplicas)/\(model.status?.replicas ?? 0)",
                    Self.activeMark(model.name, active),
                    model.idleSeconds(now: now).map { shortDuration(seconds: $0) } ?? "-",
                    model.status?.lastWake?.seconds.map { wakeDuration(seconds: $0) } ?? "-",
                ]
                if wide { row += [String(model.spec.effectiveGPUs), model.spec.effectiveImage] }
                table.add(row)
            }
            return table
        }

        static func activeMark(_ name: String, _ active: Active) -> String {
            switch active {
            case .known(let active): name == active ? "*" : ""
            case .unreadable: "?"
            }
        }
    }
}
