import Foundation
import Testing
@testable import Shared

@Suite struct CRDTests {
    /// The package root, found from this file: Tests/SharedTests/CRDTests.swift -> ../../
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static var updating: Bool { ProcessInfo.processInfo.environment["CHILL_UPDATE_MANIFESTS"] == "1" }

    // MARK: Shape

    @Test func namesScopeAndSubresources() {
        let crd = VLLMModelCRD.definition()
        #expect(crd["apiVersion"] == "apiextensions.k8s.io/v1")
        #expect(crd["kind"] == "CustomResourceDefinition")
        #expect(crd[path: "metadata", "name"] == "vllmmodels.chill.dev")
        #expect(crd[path: "spec", "group"] == "chill.dev")
        #expect(crd[path: "spec", "scope"] == "Cluster")
        #expect(crd[path: "spec", "names"] == [
            "plural": "vllmmodels", "singular": "vllmmodel", "kind": "VLLMModel", "listKind": "VLLMModelList",
            "shortNames": ["vllm"], "categories": ["chill"],
        ])
        let versions = crd[path: "spec", "versions"]?.arrayValue ?? []
        #expect(versions.count == 1)
        let v = versions.first ?? .null
        #expect(v["name"] == "v1alpha1")
        #expect(v["served"] == true)
        #expect(v["storage"] == true)
        #expect(v["subresources"] == ["status": [:]])  // status only: no scale subresource
    }

    @Test func printerColumns() {
        let v = VLLMModelCRD.definition()[path: "spec", "versions"]?.arrayValue?.first ?? .null
        let columns = v["additionalPrinterColumns"]?.arrayValue ?? []
        let summary = columns.map { c in
            [c["name"]?.stringValue ?? "", c["type"]?.stringValue ?? "", c["jsonPath"]?.stringValue ?? ""]
        }
        #expect(summary == [
            ["Model", "string", ".spec.modelName"],
            ["Phase", "string", ".status.phase"],
            ["Ready", "integer", ".status.readyReplicas"],
            ["Last Active", "date", ".status.lastActivityTime"],
            ["Age", "date", ".metadata.creationTimestamp"],
        ])
        // kubectl shows the names upper-cased.
        #expect(columns.map { ($0["name"]?.stringValue ?? "").uppercased() } == ["MODEL", "PHASE", "READY", "LAST ACTIVE", "AGE"])
        // Every column's path exists in the schema.
        let schema = VLLMModelCRD.root.json
        for c in VLLMModelCRD.printerColumns where !c.jsonPath.hasPrefix(".metadata") {
            let keys = c.jsonPath.split(separator: ".").map(String.init)
            var node: JSONValue? = schema
            for k in keys { node = node?[path: "properties", k] }
            #expect(node != nil, "\(c.jsonPath)")
            let type = node?["type"]?.stringValue
            #expect(type == (c.type == "date" ? "string" : c.type), "\(c.jsonPath)")
        }
    }

    // MARK: Structural schema

    @Test func schemaIsStructural() {
        let schema = VLLMModelCRD.definition()[path: "spec", "versions"]?.arrayValue?.first?[path: "schema", "openAPIV3Schema"] ?? .null
        #expect(OpenAPISchemaCheck.structuralProblems(schema) == [])
        // Every node has a type (or is int-or-string / preserve-unknown-fields): walk it independently too.
        var count = 0
        func walk(_ node: JSONValue, _ path: String) {
            count += 1
            let typed = node["type"] != nil || node["x-kubernetes-int-or-string"] == true
                || node["x-kubernetes-preserve-unknown-fields"] == true
            #expect(typed, "\(path) has no type")
            for (k, child) in node["properties"]?.objectValue ?? [:] { walk(child, path + "." + k) }
            if let items = node["items"] { walk(items, path + "[]") }
            if let ap = node["additionalProperties"], ap.objectValue != nil { walk(ap, path + "{}") }
        }
        walk(schema, "")
        #expect(count > 50)
    }

    @Test func structuralCheckerCatchesMistakes() {
        func problems(_ spec: JSONValue) -> [String] {
            OpenAPISchemaCheck.structuralProblems(["type": "object", "properties": ["spec": spec]])
        }
        #expect(problems(["properties": ["a": ["type": "string"]]]).contains { $0.contains("type is required") })
        #expect(problems(["type": "object", "properties": ["a": ["type": "integer", "default": "x"]]])
            .contains { $0.contains("must be of type integer") })
        #expect(problems(["type": "object", "properties": ["a": ["type": "integer", "minimum": 1, "default": 0]]])
            .contains { $0.contains("greater than or equal to 1") })
        #expect(problems(["type": "object", "properties": ["a": ["type": "string", "enum": ["x"], "default": "y"]]])
            .contains { $0.contains("Unsupported value") })
        #expect(problems(["type": "object", "properties": ["a": ["type": "string"]],
            "x-kubernetes-validations": [["rule": "self.a.size() > 1", "message": "m"]]])
            .contains { $0.contains("no maxLength") })
        #expect(problems(["type": "object", "properties": ["a": ["type": "array", "items": ["type": "string", "maxLength": 3]]],
            "x-kubernetes-validations": [["rule": "size(self.a) > 1", "message": "m"]]])
            .contains { $0.contains("no maxItems") })
        #expect(problems(["type": "array"]).contains { $0.contains("items") })
        #expect(problems(["type": "object", "$ref": "#/x"]).contains { $0.contains("unknown keyword") })
        #expect(problems(["type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": ["type": "object", "properties": ["name": ["type": "string"]]]])
            .contains { $0.contains("required or defaulted") })
        #expect(OpenAPISchemaCheck.structuralProblems(["type": "object", "properties": ["metadata": ["type": "object", "properties": ["name": ["type": "string", "maxLength": 5]]]]])
            .contains { $0.contains("metadata") })
    }

    @Test func everyDefaultValidatesAndEveryCELRuleHasAMessage() {
        var defaults = 0
        func walk(_ node: JSONValue, _ path: String) {
            if let d = node["default"] {
                defaults += 1
                var bare = node
                bare["default"] = nil
                #expect(OpenAPISchemaCheck.validate(d, schema: bare, path: path).isEmpty, "\(path)")
            }
            for r in node["x-kubernetes-validations"]?.arrayValue ?? [] {
                #expect((r["message"]?.stringValue ?? "") != "", "\(path)")
            }
            for (k, child) in node["properties"]?.objectValue ?? [:] { walk(child, path + "." + k) }
            if let items = node["items"] { walk(items, path + "[]") }
        }
        walk(VLLMModelCRD.root.json, "")
        // idleTimeout and wakeTimeout have none: unset, chill-server's own flags apply.
        #expect(defaults == 5)
        // The defaulted minimal spec also passes the Swift mirrors of the CEL rules.
        let defaulted = OpenAPISchemaCheck.applyingDefaults(to: ["modelName": "m"], schema: VLLMModelCRD.spec.json)
        #expect(VLLMModelCRD.violations(ofSpec: defaulted).isEmpty)
    }

    // MARK: Swift types and schema cannot drift

    /// Paths of an encoded value, following the schema: no descent into maps or preserved objects.
    static func valuePaths(_ value: JSONValue, schema: JSONValue, prefix: String) -> Set<String> {
        var out = Set<String>()
        if schema["x-kubernetes-preserve-unknown-fields"] == true || schema["additionalProperties"] != nil { return out }
        switch value {
        case .object(let o):
            for (k, v) in o {
                let path = prefix + "." + k
                out.insert(path)
                out.formUnion(valuePaths(v, schema: schema[path: "properties", k] ?? .null, prefix: path))
            }
        case .array(let items):
            for item in items { out.formUnion(valuePaths(item, schema: schema["items"] ?? .null, prefix: prefix + "[]")) }
        default: break
        }
        return out
    }

    static func schemaPaths(_ schema: JSONValue, prefix: String) -> Set<String> {
        var out = Set<String>()
        for (k, child) in schema["properties"]?.objectValue ?? [:] {
            out.insert(prefix + "." + k)
            out.formUnion(schemaPaths(child, prefix: prefix + "." + k))
        }
        if let items = schema["items"] { out.formUnion(schemaPaths(items, prefix: prefix + "[]")) }
        return out
    }

    /// Every optional field set, every nested type populated.
    static func fullyPopulatedModel() throws -> VLLMModel {
        let spec = VLLMModelSpec(
            modelName: "Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8", servedModelName: "qwen3-coder", maxModelLen: 112640,
            maxNumBatchedTokens: 8192, maxNumSeqs: 16, toolCallParser: "qwen3_coder", reasoningParser: "deepseek_r1",
            enableAutoToolChoice: true, dtype: "bfloat16", tensorParallelSize: 2, gpuMemoryUtilization: 0.9,
            cpuOffloadGB: 4, enablePrefixCaching: true, enableChunkedPrefill: false, extraArgs: ["--seed", "1"],
            image: "vllm/vllm-openai:v0.12.0", gpus: 2, cpu: "8", memory: "32Gi", memoryLimit: "48Gi",
            cache: .init(size: "200Gi", storageClass: "fast"), hfTokenSecret: .init(name: "hf", key: "token"),
            env: [.init(name: "A", value: "1", valueFrom: ["secretKeyRef": ["name": "s", "key": "k"]])],
            nodeSelector: ["gpu": "3090"],
            tolerations: [.init(key: "nvidia.com/gpu", operator: "Equal", value: "yes", effect: "NoExecute", tolerationSeconds: 30)],
            port: 8000, idleTimeout: "20m", wakeTimeout: "15m", minReplicas: 0, maxReplicas: 2)
        let status = VLLMModelStatus(
            phase: .waking, replicas: 1, readyReplicas: 0, lastActivityTime: "2026-11-22T23:17:43Z",
            lastWake: .init(started: "2026-11-22T23:16:00Z", ready: "2026-11-22T23:17:02Z", seconds: 62),
            scaledDownSeconds: 120.5, scaledDownSecondsLast24h: 3600,
            conditions: [Condition(type: "Ready", status: "False", observedGeneration: 1,
                lastTransitionTime: "2026-11-22T23:16:00Z", reason: "Waking", message: "scaling up")],
            observedGeneration: 1, message: "waking", handledRequestAt: "2026-11-22T23:15:59Z")
        return VLLMModel(metadata: ObjectMeta(name: "qwen3-coder"), spec: spec, status: status)
    }

    @Test func swiftCodingKeysAndSchemaPropertiesAreTheSameSet() throws {
        let model = try Self.fullyPopulatedModel()
        for (name, value, schema) in [
            ("spec", try JSONValue(encoding: model.spec), VLLMModelCRD.spec.json),
            ("status", try JSONValue(encoding: model.status), VLLMModelCRD.status.json),
        ] {
            let swiftPaths = Self.valuePaths(value, schema: schema, prefix: name)
            let schemaPaths = Self.schemaPaths(schema, prefix: name)
            #expect(swiftPaths.subtracting(schemaPaths).sorted() == [], "encoded by Swift but not in the schema")
            #expect(schemaPaths.subtracting(swiftPaths).sorted() == [], "in the schema but not encoded by Swift (or not populated here)")
            // And the populated instance is valid against the schema.
            #expect(OpenAPISchemaCheck.validate(value, schema: schema, path: name) == [])
        }
        #expect(model.spec.validationErrors() == [])
        let json = try JSONValue(encoding: model)
        #expect(Set(json.objectValue?.keys ?? [:].keys) == Set(VLLMModelCRD.root.json["properties"]?.objectValue?.keys ?? [:].keys))
        #expect(try json.decode(as: VLLMModel.self) == model)
    }

    // MARK: CEL rules

    @Test func celRulesAreBoundedAndNamed() {
        let rules = VLLMModelCRD.allRules()
        #expect(rules.map(\.path) == ["spec", "spec", "spec.image", "spec.idleTimeout", "spec.wakeTimeout"])
        #expect(rules.map(\.rule.message) == [
            "minReplicas must be <= maxReplicas",
            "gpus must be a multiple of tensorParallelSize",
            VLLMModelCRD.Messages.image,
            VLLMModelCRD.Messages.idleTimeout,
            VLLMModelCRD.Messages.wakeTimeout,
        ])
        // Messages name their field.
        #expect(VLLMModelCRD.Messages.idleTimeout.hasPrefix("idleTimeout "))
        #expect(VLLMModelCRD.Messages.wakeTimeout.hasPrefix("wakeTimeout "))
        #expect(VLLMModelCRD.Messages.image.hasPrefix("image "))
        for (_, rule) in rules {
            // CEL string literals here are single-quoted and escape-free.
            #expect(!rule.rule.contains("\\"), "\(rule.rule)")
            #expect(!rule.rule.contains("\""), "\(rule.rule)")
        }
        // Strings that CEL reads are bounded.
        let spec = VLLMModelCRD.spec.json
        for field in ["image", "idleTimeout", "wakeTimeout"] {
            #expect(spec[path: "properties", field, "maxLength"] != nil, "\(field)")
        }
    }

    @Test func invalidObjectsAreRejectedAfterDefaulting() {
        // As in kube-api-samples/04b: maxReplicas defaults to 1, so minReplicas 2 fails the rule.
        let spec = OpenAPISchemaCheck.applyingDefaults(to: ["modelName": "m", "minReplicas": 2], schema: VLLMModelCRD.spec.json)
        let v = VLLMModelCRD.violations(ofSpec: spec)
        #expect(v.map(\.description) == [#"spec: Invalid value: "object": minReplicas must be <= maxReplicas"#])
        // Schema errors are worded like the real API server's (kube-api-samples/04b, 04c).
        let schema = VLLMModelCRD.root.json
        let bad: JSONValue = ["apiVersion": "chill.dev/v1alpha1", "kind": "VLLMModel", "metadata": ["name": "x"],
                              "spec": ["minReplicas": "two", "maxReplicas": -1, "port": 70000, "dtype": "int4"]]
        let errors = OpenAPISchemaCheck.validate(bad, schema: schema, path: "").map { e in
            FieldErrorSummary(field: e.field, reason: e.reason, message: e.message)
        }
        #expect(errors.contains(.init(field: "spec.minReplicas", reason: "FieldValueTypeInvalid",
            message: #"Invalid value: "string": spec.minReplicas in body must be of type integer: "string""#)))
        #expect(errors.contains { $0.field == "spec.modelName" && $0.message == "Required value" })
        #expect(errors.contains { $0.field == "spec.maxReplicas" && $0.message.hasSuffix("should be greater than or equal to 1") })
        #expect(errors.contains { $0.field == "spec.port" && $0.message.hasSuffix("should be less than or equal to 65535") })
        #expect(errors.contains { $0.reason == "FieldValueNotSupported" && $0.field == "spec.dtype" })
        // Quantities take the Kubernetes pattern.
        let q = OpenAPISchemaCheck.validate(["modelName": "m", "memory": "32 GB", "cpu": 8], schema: VLLMModelCRD.spec.json, path: "spec")
        #expect(q.map(\.field) == ["spec.memory"])
    }

    struct FieldErrorSummary: Equatable { var field: String; var reason: String; var message: String }

    // MARK: Generated files

    @Test func manifestMatchesTheGenerator() throws {
        let path = Self.packageRoot + "/manifests/crd.yaml"
        let expected = VLLMModelCRD.manifestYAML()
        if Self.updating {
            try FileManager.default.createDirectory(atPath: Self.packageRoot + "/manifests", withIntermediateDirectories: true)
            try expected.write(toFile: path, atomically: true, encoding: .utf8)
        }
        let actual = try String(contentsOfFile: path, encoding: .utf8)
        #expect(actual == expected, "manifests/crd.yaml is stale: run CHILL_UPDATE_MANIFESTS=1 swift test --filter CRDTests")
        #expect(actual.hasPrefix("# GENERATED FILE"))
        // The YAML reads back as the same CRD.
        #expect(try YAML.decode(actual) == VLLMModelCRD.definition())
    }

    static let docBegin = "<!-- BEGIN GENERATED FIELD REFERENCE (CHILL_UPDATE_MANIFESTS=1 swift test --filter CRDTests) -->"
    static let docEnd = "<!-- END GENERATED FIELD REFERENCE -->"

    @Test func docsFieldReferenceMatchesTheGenerator() throws {
        let path = Self.packageRoot + "/docs/VLLMMODEL.md"
        var text = try String(contentsOfFile: path, encoding: .utf8)
        let generated = Self.docBegin + "\n\n" + VLLMModelCRD.markdownReference() + Self.docEnd
        let begin = try #require(text.range(of: Self.docBegin))
        let end = try #require(text.range(of: Self.docEnd))
        let current = String(text[begin.lowerBound..<end.upperBound])
        if Self.updating && current != generated {
            text.replaceSubrange(begin.lowerBound..<end.upperBound, with: generated)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        #expect(current == generated, "docs/VLLMMODEL.md field reference is stale: run CHILL_UPDATE_MANIFESTS=1 swift test --filter CRDTests")
    }

    @Test func docsExampleIsValid() throws {
        let text = try String(contentsOfFile: Self.packageRoot + "/docs/VLLMMODEL.md", encoding: .utf8)
        // The first ```yaml block is the example.
        let start = try #require(text.range(of: "```yaml\n"))
        let end = try #require(text.range(of: "\n```", range: start.upperBound..<text.endIndex))
        let json = try YAML.decode(String(text[start.upperBound..<end.lowerBound]))
        let model = try json.decode(as: VLLMModel.self)
        #expect(OpenAPISchemaCheck.validate(json, schema: VLLMModelCRD.root.json, path: "") == [])
        #expect(model.spec.validationErrors() == [])
    }
}
