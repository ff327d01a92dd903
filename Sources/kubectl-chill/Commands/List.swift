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
                One row per VLLMModel. ACTIVE marks the model chosen with `kubectl chill switch`; IDLE FOR counts from the last request while the model serves (`-` otherwise); LAST WAKE is how long the most recent scale-from-zero took.

                Examples:
                  kubectl chill list
                  kubectl chill ls -o wide
                  kubectl chill list -o json | jq '.items[].metadata.name'
                """,
            aliases: ["ls"])

        @OptionGroup var global: GlobalOptions

        @Option(name: .shortAndLong, help: "Output format: table, wide (adds GPUS and IMAGE), json or yaml.")
        var output: OutputFormat = .table

        func run() async throws {
            let (models, state) = try await global.withClient { client in
                async let models = ModelLookup.all(client)
                async let state = ChillState.read(client)
                return try await (models, state)
            }
            if output.isStructured {
                output.printObjects(models.map(\.printable))
                return
            }
            guard !models.isEmpty else {
                Console.current.err("No models found. Create one with: kubectl chill create NAME --model HF_ID")
                return
            }
            Console.current.out(Self.table(models, active: state.activeModel, wide: output == .wide, now: CLIClock.now).rendered)
        }

        static func table(_ models: [VLLMModel], active: String?, wide: Bool, now: Date) -> Table {
            var table = Table(["NAME", "MODEL", "PHASE", "READY", "ACTIVE", "IDLE FOR", "LAST WAKE"] + (wide ? ["GPUS", "IMAGE"] : []))
            for model in models {
                var row = [
                    model.name,
                    model.spec.modelName,
                    model.phase.rawValue,
                    "\(model.readyReplicas)/\(model.status?.replicas ?? 0)",
                    model.name == active ? "*" : "",
                    model.idleSeconds(now: now).map { shortDuration(seconds: $0) } ?? "-",
                    model.status?.lastWake?.seconds.map { wakeDuration(seconds: $0) } ?? "-",
                ]
                if wide { row += [String(model.spec.effectiveGPUs), model.spec.effectiveImage] }
                table.add(row)
            }
            return table
        }
    }
}
