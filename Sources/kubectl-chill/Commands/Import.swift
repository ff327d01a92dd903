import ArgumentParser
import Shared
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension KubectlChill {
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert vllm-chill's models (vllm.sir-alfred.io/v1alpha1) into chill models.",
            discussion: """
                Reads VLLMModels of the predecessor, vllm-chill, from a YAML file (several documents, or a List) or from the cluster, and creates chill.dev/v1alpha1 VLLMModels with the same names. Every spec field whose name chill knows is carried over as is; the others are listed as dropped. Existing models are skipped (and said so); invalid ones are reported and not created (exit 1).

                Examples:
                  kubectl chill import -f old-models.yaml --dry-run
                  kubectl chill import -f old-models.yaml
                  kubectl chill import --from-cluster
                  kubectl get vllmmodels.vllm.sir-alfred.io -o yaml | kubectl chill import -f -
                """)

        static let legacyGroup = "vllm.sir-alfred.io"
        static let legacyVersion = "v1alpha1"
        static let legacyType = ResourceType(group: legacyGroup, version: legacyVersion, kind: "VLLMModel", plural: "vllmmodels", isNamespaced: false)

        @OptionGroup var global: GlobalOptions

        @Option(name: .shortAndLong, help: "YAML file with vllm-chill VLLMModels ('-' for stdin).")
        var file: String?

        @Flag(help: "List the vllm-chill VLLMModels from the cluster (needs its CRD).")
        var fromCluster = false

        @Flag(help: "Print the converted models and create nothing.")
        var dryRun = false

        @Option(name: .shortAndLong, help: "With --dry-run: yaml (default) or json.")
        var output: StructuredFormat?

        func validate() throws {
            if (file == nil) == !fromCluster { throw ValidationError("give exactly one of -f FILE or --from-cluster") }
            if let output, !dryRun { throw ValidationError("-o \(output.rawValue) needs --dry-run (import prints the models only when it creates nothing)") }
        }

        func run() async throws {
            let console = Console.current
            var sources: [JSONValue]
            if let file {
                sources = try Self.legacyObjects(in: try Self.read(file))
            } else {
                sources = try await global.withClient { client in
                    do { return try await client.untyped(Self.legacyType).listAll().items } catch let error as KubeError where error.isNotFound {
                        throw CLIError(
                            "vllm-chill's CRD (vllmmodels.\(Self.legacyGroup)) is not installed in this cluster",
                            hint: "export the models to a file and use: kubectl chill import -f FILE")
                    }
                }
            }
            var converted: [VLLMModel] = []
            var failed = 0
            for source in sources {
                let name = source.objectName ?? "?"
                switch Self.convert(source) {
                case .success(let result):
                    if !result.dropped.isEmpty {
                        console.err("note: \(name): dropped field\(result.dropped.count == 1 ? "" : "s") chill does not have: \(result.dropped.joined(separator: ", "))")
                    }
                    converted.append(result.model)
                case .failure(let error):
                    console.err("error: \(name): \(error.message)")
                    failed += 1
                }
            }
            if sources.isEmpty { console.err("No vllm-chill VLLMModels found (apiVersion \(Self.legacyGroup)/\(Self.legacyVersion)).") }
            if dryRun {
                if output == .json {
                    OutputFormat.json.printObjects(converted.map(\.printable))
                } else if !converted.isEmpty {
                    console.out(YAML.encode(documents: converted.map(\.printable)), terminator: "")
                }
            } else if !converted.isEmpty {
                try await global.withClient { client in
                    let api = client.api(VLLMModel.self)
                    for model in converted {
                        do {
                            _ = try await api.create(model, fieldManager: ChillContract.fieldManager)
                            console.out("vllmmodel.chill.dev/\(model.name) created")
                        } catch let error as KubeError where error.isAlreadyExists {
                            console.out("vllmmodel.chill.dev/\(model.name) already exists, skipped")
                        } catch let error as KubeError where error.isNotFound {
                            throw ModelLookup.notInstalled
                        } catch let error as KubeError where error.reason == .invalid {
                            console.err("error: \(model.name): \(error.message)")
                            failed += 1
                        }
                    }
                }
            }
            if failed > 0 {
                throw CLIError("\(failed) model\(failed == 1 ? "" : "s") could not be converted", hint: "fix the fields named above and import again")
            }
        }

        static func read(_ file: String) throws -> String {
            if file == "-" {
                var text = ""
                while let line = readLine(strippingNewline: false) { text += line }
                return text
            }
            guard let data = FileManager.default.contents(atPath: file) else {
                throw CLIError("cannot read \(file)", hint: "check the path")
            }
            return String(decoding: data, as: UTF8.self)
        }

        /// The vllm-chill VLLMModels in a YAML text: documents and the items of Lists.
        static func legacyObjects(in text: String) throws -> [JSONValue] {
            let documents: [JSONValue]
            do { documents = try YAML.decodeDocuments(text) } catch { throw CLIError("\(error)", hint: "the file must be YAML (one or more documents)") }
            var out: [JSONValue] = []
            func visit(_ doc: JSONValue) {
                if doc["kind"]?.stringValue?.hasSuffix("List") == true, let items = doc["items"]?.arrayValue {
                    items.forEach(visit)
                } else if doc["kind"]?.stringValue == "VLLMModel", doc["apiVersion"]?.stringValue?.hasPrefix(legacyGroup + "/") == true {
                    out.append(doc)
                } else if doc != .null {
                    Console.current.err("note: skipped \(doc["kind"]?.stringValue ?? "a document") \(doc.objectName.map { "\"\($0)\" " } ?? "")(not \(legacyGroup) VLLMModel)")
                }
            }
            documents.forEach(visit)
            return out
        }

        struct Converted {
            var model: VLLMModel
            var dropped: [String]
        }

        /// Same-named spec fields carried over; names, labels and annotations kept (not kubectl's
        /// last-applied configuration); the result checked like `create` does.
        static func convert(_ source: JSONValue) -> Result<Converted, CLIError> {
            guard let name = source.objectName else { return .failure(CLIError("no metadata.name")) }
            let known = Set(VLLMModelCRD.spec.fields.map(\.name))
            var spec: [String: JSONValue] = [:]
            var dropped: [String] = []
            for (key, value) in (source["spec"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
                if known.contains(key) { spec[key] = value } else { dropped.append("spec.\(key)") }
            }
            var metadata: JSONValue = ["name": .string(name)]
            if let labels = source[path: "metadata", "labels"], labels.objectValue?.isEmpty == false { metadata["labels"] = labels }
            var annotations = source[path: "metadata", "annotations"]?.objectValue ?? [:]
            annotations["kubectl.kubernetes.io/last-applied-configuration"] = nil
            annotations["chill.dev/imported-from"] = .string("\(legacyGroup)/\(legacyVersion)")
            metadata["annotations"] = .object(annotations)
            let object: JSONValue = [
                "apiVersion": .string(VLLMModel.apiVersion), "kind": .string(VLLMModel.kind), "metadata": metadata, "spec": .object(spec),
            ]
            let model: VLLMModel
            do { model = try object.decode(as: VLLMModel.self) } catch {
                return .failure(CLIError("spec does not fit chill's VLLMModel: \(Self.decodingProblem(error))"))
            }
            if let problem = ModelLookup.nameProblem(name) { return .failure(CLIError(problem)) }
            let problems = ModelValidation.problems(model.spec)
            if !problems.isEmpty { return .failure(CLIError(problems.joined(separator: "; "))) }
            return .success(Converted(model: model, dropped: dropped))
        }

        static func decodingProblem(_ error: any Error) -> String {
            guard let error = error as? DecodingError else { return "\(error)" }
            switch error {
            case .keyNotFound(let key, let context):
                return "missing \((context.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: "."))"
            case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
                return "\(context.codingPath.map(\.stringValue).joined(separator: ".")) has the wrong type"
            @unknown default:
                return "\(error)"
            }
        }
    }
}
