import Testing
@testable import Shared

@Suite struct YAMLTests {
    // MARK: - Reading documents

    @Test func multiDocumentManifestWithComments() throws {
        let text = """
            # chill manifests
            ---
            apiVersion: v1   # trailing comment
            kind: Namespace
            metadata:
              name: models
            ---
            # a document with only a comment is empty and skipped
            ---
            apiVersion: v1
            kind: Service
            metadata:
              name: vllm
              namespace: models
            spec:
              ports:
              - port: 80
                targetPort: 8000   # vLLM
              selector: {app: vllm}
            ...
            ---
            """
        let documents = try YAML.decodeDocuments(text)
        #expect(documents.count == 2)
        #expect(documents[0] == ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "models"]])
        #expect(documents[1][path: "metadata", "namespace"] == "models")
        #expect(documents[1][path: "spec", "ports"] == [["port": 80, "targetPort": 8000]])
        #expect(documents[1][path: "spec", "selector"] == ["app": "vllm"])
    }

    @Test func emptyStreamsAndDocuments() throws {
        #expect(try YAML.decodeDocuments("") == [])
        #expect(try YAML.decodeDocuments("# nothing here\n") == [])
        #expect(try YAML.decodeDocuments("---\n---\n") == [])
        #expect(try YAML.decodeDocuments("---\na: 1\n---\n") == [["a": 1]])
        #expect(try YAML.decodeDocuments("%YAML 1.2\n---\na: 1\n...\n") == [["a": 1]])
        // An explicit null is a document; only empty ones are skipped.
        #expect(try YAML.decodeDocuments("--- null\n--- ~\n") == [.null, .null])
        #expect(try YAML.decode("") == .null)
        #expect(try YAML.decode("---\n") == .null)
        #expect(try YAML.decode("---\nx\n---\n") == "x")
        #expect(try YAML.decode("[1, 2]") == [1, 2])
        #expect(try YAML.decode("hello") == "hello")
    }

    @Test func decodeRejectsSeveralDocuments() {
        #expect(throws: YAMLError(line: 2, column: 1, message: "expected a single document but found 2")) {
            try YAML.decode("a: 1\n---\nb: 2\n")
        }
    }

    @Test func kubeconfig() throws {
        let text = """
            apiVersion: v1
            kind: Config
            preferences: {}
            current-context: gpu-cluster
            clusters:
            - cluster:
                certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM=
                server: https://10.0.0.1:6443
              name: gpu-cluster
            - cluster:
                insecure-skip-tls-verify: true
                server: "https://localhost:8443"
                proxy-url: http://proxy:3128
              name: local
            contexts:
            - context:
                cluster: gpu-cluster
                namespace: models
                user: admin
              name: gpu-cluster
            - context:
                cluster: local
                user: dev
              name: local
            users:
            - name: admin
              user:
                client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t
                client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ==
            - name: dev
              user:
                token: 0123456789abcdef
                exec:
                  apiVersion: client.authentication.k8s.io/v1beta1
                  command: aws
                  args: ["eks", "get-token", "--cluster-name", "gpu"]
                  env: null
                  interactiveMode: IfAvailable
                  provideClusterInfo: false
            """
        let config = try YAML.decode(text)
        #expect(config["kind"] == "Config")
        #expect(config["current-context"] == "gpu-cluster")
        #expect(config["preferences"] == [:])
        let clusters = try #require(config["clusters"]?.arrayValue)
        #expect(clusters.count == 2)
        #expect(clusters[0][path: "cluster", "certificate-authority-data"]
            == "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM=")
        #expect(clusters[0][path: "cluster", "server"] == "https://10.0.0.1:6443")
        #expect(clusters[1][path: "cluster", "insecure-skip-tls-verify"] == true)
        #expect(clusters[1][path: "cluster", "proxy-url"] == "http://proxy:3128")
        #expect(config["contexts"]?.arrayValue?.map { $0["name"] } == ["gpu-cluster", "local"])
        #expect(config["contexts"]?.arrayValue?.first?[path: "context", "namespace"] == "models")
        let users = try #require(config["users"]?.arrayValue)
        #expect(users[0][path: "user", "client-key-data"] == "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ==")
        #expect(users[1][path: "user", "token"] == "0123456789abcdef")
        #expect(users[1][path: "user", "exec", "args"] == ["eks", "get-token", "--cluster-name", "gpu"])
        #expect(users[1][path: "user", "exec", "env"] == .null)
        #expect(users[1][path: "user", "exec", "provideClusterInfo"] == false)
        // And it survives a write/read cycle.
        #expect(try YAML.decode(YAML.encode(config)) == config)
    }

    @Test func anchorsAliasesAndMergeKeys() throws {
        let text = """
            base: &base
              image: vllm/vllm-openai
              port: 8000
              labels: &labels {app: vllm}
            override:
              <<: *base
              port: 9000
            explicitWinsWhateverTheOrder:
              port: 1
              <<: *base
            mergeList:
              <<: [*base, {extra: 1, image: ignored}]
            inlineMerge:
              <<: {a: 1}
              b: 2
            quotedIsAKey:
              "<<": plain
            labels: *labels
            list: &list [1, two]
            copy: *list
            scalar: &s hello
            again: *s
            """
        let v = try YAML.decode(text)
        let base: JSONValue = ["image": "vllm/vllm-openai", "port": 8000, "labels": ["app": "vllm"]]
        #expect(v["base"] == base)
        #expect(v["override"] == ["image": "vllm/vllm-openai", "port": 9000, "labels": ["app": "vllm"]])
        #expect(v["explicitWinsWhateverTheOrder"] == ["image": "vllm/vllm-openai", "port": 1, "labels": ["app": "vllm"]])
        #expect(v["mergeList"] == ["image": "vllm/vllm-openai", "port": 8000, "labels": ["app": "vllm"], "extra": 1])
        #expect(v["inlineMerge"] == ["a": 1, "b": 2])
        #expect(v["quotedIsAKey"] == ["<<": "plain"])
        #expect(v["labels"] == ["app": "vllm"])
        #expect(v["copy"] == [1, "two"])
        #expect(v["again"] == "hello")
    }

    @Test func aliasErrors() {
        #expect(throws: YAMLError(line: 1, column: 4, message: "unknown anchor 'nope' referenced")) {
            try YAML.decode("a: *nope\n")
        }
        #expect(throws: YAMLError.self) { try YAML.decode("a: &x [1, *x]\n") }
        #expect(throws: YAMLError.self) { try YAML.decode("a: &x 1\nb:\n  <<: *x\n") }
        #expect(throws: YAMLError.self) { try YAML.decode("? [a, b]\n: c\n") }
        // Anchors do not carry over into the next document.
        #expect(throws: YAMLError.self) { try YAML.decodeDocuments("a: &x 1\n---\nb: *x\n") }
    }

    @Test func excessiveAliasingAndNestingAreErrorsNotCrashes() {
        var laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1...12 {
            let p = "*a\(i - 1)"
            laughs += "a\(i): &a\(i) [\(Array(repeating: p, count: 10).joined(separator: ", "))]\n"
        }
        #expect(throws: YAMLError.self) { try YAML.decode(laughs) }
        let deep = String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000)
        #expect(throws: YAMLError.self) { try YAML.decode(deep) }
        let ok = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        #expect((try? YAML.decode(ok)) != nil)
    }

    // MARK: - Scalars

    static let plainScalars: [(String, JSONValue)] = [
        // null
        ("null", .null), ("Null", .null), ("NULL", .null), ("~", .null), ("", .null), ("nULL", "nULL"),
        // bool: YAML 1.2 core only
        ("true", true), ("True", true), ("TRUE", true), ("false", false), ("False", false), ("FALSE", false),
        ("tRUE", "tRUE"), ("yes", "yes"), ("no", "no"), ("on", "on"), ("off", "off"), ("y", "y"), ("n", "n"),
        // int
        ("0", 0), ("42", 42), ("-17", -17), ("+17", 17), ("0x1F", 31), ("0xff", 255), ("0o17", 15), ("0777", 777),
        ("9223372036854775807", .int(Int.max)), ("-9223372036854775808", .int(Int.min)),
        ("99999999999999999999", 1e20), ("1_000", "1_000"), ("0b101", "0b101"), ("-0x1F", "-0x1F"), ("0x", "0x"),
        ("0o8", "0o8"),
        // float
        ("1.5", 1.5), ("-1.5", -1.5), ("1.0", 1.0), ("1e3", 1000.0), ("1E3", 1000.0), ("+1.5e-3", 0.0015),
        (".5", 0.5), ("5.", 5.0), ("1e+100", 1e100), (".inf", .double(.infinity)), (".Inf", .double(.infinity)),
        ("+.inf", .double(.infinity)), ("-.inf", .double(-.infinity)), ("-.INF", .double(-.infinity)),
        ("1.2.3", "1.2.3"), ("1e", "1e"), ("e3", "e3"), (".", "."), ("-a", "-a"), ("+", "+"), ("inf", "inf"),
        // strings
        ("hello world", "hello world"), ("12:30", "12:30"), ("2024-01-01", "2024-01-01"), ("v1.2", "v1.2"),
        ("a:b", "a:b"), ("http://x:80/", "http://x:80/"),
    ]

    @Test(arguments: plainScalars)
    func plainScalarResolution(text: String, expected: JSONValue) throws {
        #expect(try YAML.decode("v: \(text)")["v"] == expected)
        #expect(try YAML.decode("- v: \(text)") == [["v": expected]])
    }

    @Test func notANumber() throws {
        for text in [".nan", ".NaN", ".NAN"] {
            guard case .double(let d) = try YAML.decode(text) else {
                Issue.record("\(text) is not a double")
                continue
            }
            #expect(d.isNaN)
        }
        #expect(try YAML.decode("nan") == "nan")
    }

    @Test func quotedAndBlockScalarsAreStrings() throws {
        let text = """
            single: '123'
            double: "true"
            nullish: 'null'
            empty: ""
            escaped: "a\\tb\\n\\u00e9"
            singleQuote: 'it''s'
            literal: |
              line 1
                indented
              42
            literalStrip: |-
              true
            literalKeep: |+
              x

            folded: >
              folded
              text

              para
            foldedStrip: >-
              1.5
            """
        let v = try YAML.decode(text)
        #expect(v["single"] == "123")
        #expect(v["double"] == "true")
        #expect(v["nullish"] == "null")
        #expect(v["empty"] == "")
        #expect(v["escaped"] == "a\tb\né")
        #expect(v["singleQuote"] == "it's")
        #expect(v["literal"] == "line 1\n  indented\n42\n")
        #expect(v["literalStrip"] == "true")
        #expect(v["literalKeep"] == "x\n\n")
        #expect(v["folded"] == "folded text\npara\n")
        #expect(v["foldedStrip"] == "1.5")
    }

    @Test func explicitTags() throws {
        let text = """
            str: !!str 123
            strBool: !!str true
            strNull: !!str
            int: !!int "42"
            hex: !!int 0x10
            float: !!float 1
            floatQuoted: !!float "2.5"
            bool: !!bool "false"
            null: !!null ""
            nonSpecific: ! 12
            binary: !!binary aGVsbG8=
            custom: !Ref 12
            seq: !!seq [1]
            map: !!map {a: 1}
            """
        let v = try YAML.decode(text)
        #expect(v["str"] == "123")
        #expect(v["strBool"] == "true")
        #expect(v["strNull"] == "")
        #expect(v["int"] == 42)
        #expect(v["hex"] == 16)
        #expect(v["float"] == .double(1))
        #expect(v["floatQuoted"] == 2.5)
        #expect(v["bool"] == false)
        #expect(v["null"] == .null)
        #expect(v["nonSpecific"] == "12")
        #expect(v["binary"] == "aGVsbG8=")
        #expect(v["custom"] == 12)
        #expect(v["seq"] == [1])
        #expect(v["map"] == ["a": 1])

        #expect(throws: YAMLError(line: 1, column: 4, message: "invalid !!int value \"abc\"")) {
            try YAML.decode("a: !!int abc")
        }
        #expect(throws: YAMLError.self) { try YAML.decode("a: !!bool yes") }
        #expect(throws: YAMLError.self) { try YAML.decode("a: !!float x") }
        #expect(throws: YAMLError.self) { try YAML.decode("a: !!null 0") }
    }

    @Test func nonStringKeysBecomeTheirText() throws {
        let v = try YAML.decode("1: one\ntrue: yes\nnull: n\n~: tilde\n1.50: f\n0x10: hex\n\"q\": quoted\n? complex\n: key\n")
        #expect(v == ["1": "one", "true": "yes", "null": "n", "~": "tilde", "1.50": "f", "0x10": "hex",
                      "q": "quoted", "complex": "key"])
        #expect(try YAML.decode("a: &k name\n*k : value\n") == ["a": "name", "name": "value"])
        #expect(try YAML.decode("a: 1\na: 2\n") == ["a": 2])  // duplicates: last wins
    }

    // MARK: - Errors

    @Test func errorsCarryLibyamlProblemAndPosition() {
        let broken = """
            apiVersion: v1
            kind: ConfigMap
            data: key: value
            """
        do {
            _ = try YAML.decode(broken)
            Issue.record("expected an error")
        } catch {
            #expect(error == YAMLError(line: 3, column: 10, message: "mapping values are not allowed in this context"))
            #expect(error.description == "YAML error at line 3, column 10: mapping values are not allowed in this context")
        }

        do {
            _ = try YAML.decodeDocuments("a: 1\n---\nb: [1, 2\nc: 3\n")
            Issue.record("expected an error")
        } catch {
            #expect(error.line == 4)
            #expect(error.message.contains("did not find expected ',' or ']'"))
            #expect(error.message.contains("while parsing a flow sequence at line 3, column 4"))
        }

        do {
            _ = try YAML.decode("a: \"unterminated\n")
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("found unexpected end of stream"))
        }

        do {
            _ = try YAML.decode("a: 1\nb: x\u{1}y\n")
            Issue.record("expected an error")
        } catch {
            #expect(error == YAMLError(line: 2, column: 5, message: "control characters are not allowed (character #x1)"))
        }

        #expect(throws: YAMLError.self) { try YAML.decode("key: value\n  bad indent: x\n") }
        #expect(throws: YAMLError.self) { try YAML.decode("\t- tab") }
    }

    @Test func arbitraryInputNeverCrashes() {
        var rng = SplitMix64(seed: 7)
        let pieces = ["a", "b", ":", " ", "\n", "  ", "-", "- ", "? ", "[", "]", "{", "}", ",", "'", "\"", "#",
                      "&x ", "*x", "&y ", "*y", "<<: ", "!!int ", "!!str ", "! ", "|", ">", "|-", "---\n", "...\n",
                      "%YAML 1.2\n", "\t", "\\", "1", "0x", ".inf", "~", "é", "\u{FEFF}", "\u{85}", "\r"]
        for _ in 0..<3_000 {
            var text = ""
            for _ in 0..<Int.random(in: 0...40, using: &rng) { text += pieces.randomElement(using: &rng) ?? "" }
            _ = try? YAML.decodeDocuments(text)
            _ = try? YAML.decode(text)
        }
    }

    // MARK: - Writing

    @Test func goldenDeployment() throws {
        let deployment: JSONValue = [
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": [
                "name": "vllm-llama",
                "namespace": "models",
                "labels": ["app.kubernetes.io/name": "vllm", "chill.dev/managed": "true"],
                "annotations": ["chill.dev/idle-after": "15m", "chill.dev/last-request": "2024-05-01T10:00:00Z"],
                "creationTimestamp": .null,
            ],
            "spec": [
                "replicas": 0,
                "selector": ["matchLabels": ["app": "vllm"]],
                "template": [
                    "metadata": ["labels": ["app": "vllm"]],
                    "spec": [
                        "containers": [[
                            "name": "vllm",
                            "image": "vllm/vllm-openai:v0.6.3",
                            "args": ["--model", "meta-llama/Llama-3.1-8B", "--port", "8000",
                                     "--gpu-memory-utilization", "0.9"],
                            "command": ["sh", "-c", "echo starting\nexec vllm serve \"$@\"\n"],
                            "env": [["name": "HF_HOME", "value": "/cache"], ["name": "VLLM_NO_USAGE_STATS", "value": "1"],
                                    ["name": "FLAG", "value": "yes"], ["name": "EMPTY", "value": ""]],
                            "ports": [["containerPort": 8000, "name": "http", "protocol": "TCP"]],
                            "resources": ["limits": ["nvidia.com/gpu": 1, "memory": "32Gi", "cpu": 2.5]],
                            "readinessProbe": ["httpGet": ["path": "/health", "port": 8000], "periodSeconds": 5],
                            "securityContext": [:],
                        ]],
                        "volumes": [],
                        "tolerations": [["key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"]],
                    ],
                ],
            ],
        ]
        let expected = """
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              annotations:
                chill.dev/idle-after: 15m
                chill.dev/last-request: "2024-05-01T10:00:00Z"
              creationTimestamp: null
              labels:
                app.kubernetes.io/name: vllm
                chill.dev/managed: "true"
              name: vllm-llama
              namespace: models
            spec:
              replicas: 0
              selector:
                matchLabels:
                  app: vllm
              template:
                metadata:
                  labels:
                    app: vllm
                spec:
                  containers:
                  - args:
                    - --model
                    - meta-llama/Llama-3.1-8B
                    - --port
                    - "8000"
                    - --gpu-memory-utilization
                    - "0.9"
                    command:
                    - sh
                    - -c
                    - |
                      echo starting
                      exec vllm serve "$@"
                    env:
                    - name: HF_HOME
                      value: /cache
                    - name: VLLM_NO_USAGE_STATS
                      value: "1"
                    - name: FLAG
                      value: "yes"
                    - name: EMPTY
                      value: ""
                    image: vllm/vllm-openai:v0.6.3
                    name: vllm
                    ports:
                    - containerPort: 8000
                      name: http
                      protocol: TCP
                    readinessProbe:
                      httpGet:
                        path: /health
                        port: 8000
                      periodSeconds: 5
                    resources:
                      limits:
                        cpu: 2.5
                        memory: 32Gi
                        nvidia.com/gpu: 1
                    securityContext: {}
                  tolerations:
                  - effect: NoSchedule
                    key: nvidia.com/gpu
                    operator: Exists
                  volumes: []

            """
        #expect(YAML.encode(deployment) == expected)
        #expect(try YAML.decode(expected) == deployment)
    }

    @Test func goldenDocumentsAndScalars() {
        #expect(YAML.encode(documents: [["kind": "Namespace"], ["kind": "Service", "spec": ["ports": [["port": 80]]]]])
            == "kind: Namespace\n---\nkind: Service\nspec:\n  ports:\n  - port: 80\n")
        #expect(YAML.encode(documents: []) == "")
        #expect(YAML.encode(documents: [[:]]) == "{}\n")
        #expect(YAML.encode([:]) == "{}\n")
        #expect(YAML.encode([]) == "[]\n")
        #expect(YAML.encode(.null) == "null\n")
        #expect(YAML.encode(1.0) == "1.0\n")
        #expect(YAML.encode(["a": 1e100, "b": -0.5, "c": .double(.infinity), "d": .double(-.infinity), "e": .double(.nan)])
            == "a: 1e+100\nb: -0.5\nc: .inf\nd: -.inf\ne: .nan\n")
        #expect(YAML.encode(["b": true, "a": 12, "B": "x", "é": 1, "_": 0])
            == "B: x\n_: 0\na: 12\nb: true\n\u{e9}: 1\n")
        #expect(YAML.encode(["q": ["true", "123", "1.5", "null", "", "~", "yes", "no", "on", "off", "0x1F", "1e3", ".inf"]])
            == """
            q:
            - "true"
            - "123"
            - "1.5"
            - "null"
            - ""
            - "~"
            - "yes"
            - "no"
            - "on"
            - "off"
            - "0x1F"
            - "1e3"
            - ".inf"

            """)
        #expect(YAML.encode(["a": " lead", "b": "trail ", "c": "k: v", "d": "- x", "e": "#x", "f": "a\tb", "g": "1.2.3", "h": "12:30"])
            == "a: ' lead'\nb: 'trail '\nc: 'k: v'\nd: '- x'\ne: '#x'\nf: \"a\\tb\"\ng: 1.2.3\nh: \"12:30\"\n")
        // Multi-line strings: literal blocks, with libyaml's chomping; double quotes where a block cannot hold them.
        #expect(YAML.encode(["a": "x\ny", "b": "x\ny\n", "c": "x\n\n", "d": "trailing \nspace", "e": "cr\r\nlf"])
            == "a: |-\n  x\n  y\nb: |\n  x\n  y\nc: |+\n  x\n\nd: \"trailing \\nspace\"\ne: \"cr\\r\\nlf\"\n...\n")
        // Long strings are not folded.
        let long = String(repeating: "word ", count: 40) + "end"
        #expect(YAML.encode(["k": .string(long)]) == "k: \(long)\n")
        // libyaml writes BMP characters as they are but escapes those outside it (emoji).
        #expect(YAML.encode("日本語 é") == "日本語 é\n")
        #expect(YAML.encode("🙂") == "\"\\U0001F642\"\n")
    }

    // MARK: - Round trips

    static let trickyStrings: [String] = [
        "true", "True", "TRUE", "false", "yes", "Yes", "YES", "no", "NO", "on", "On", "off", "y", "Y", "n", "N",
        "null", "Null", "~", "", "123", "-1", "+1", "0x1F", "0o17", "0777", "1_000", "0b11", "1.5", "1e3", "1E3",
        ".5", "5.", ".inf", "-.inf", "+.inf", ".nan", ".NaN", "1.2.3", "12:30", "1:2:3", "190:20:30.15",
        "2024-01-01", "2024-01-01T00:00:00Z", "2001-12-14 21:59:43.10 -5", "<<", "=", "-", "--", "---", "...",
        "- a", "a: b", "a:b", "#", "a #b", "a#b", "? x", "?", ":", "!tag", "&a", "*a", "%x", "@x", "`x", "|", "> x",
        "[a]", "{a: b}", "a, b", "'", "\"", "''", "\\", "\\n", " ", "  ", " a", "a ", "\t", "a\tb", "\n", "\n\n",
        "a\n", "a\n\n", "\na", "\n a", " \na", "a \nb", "a\n b", "a\n\tb", "\ta\nb", "a\n \n b", "\r", "\r\n",
        "a\rb", "\u{85}", "a\u{2028}b", "\u{2029}", "\u{FEFF}", "\u{FEFF}a\nb", "\u{0}", "a\u{7}b", "\u{1B}[0m",
        "\u{7F}", "\u{A0}", "é", "日本語", "🙂", "emoji 🙂\nline", "e\u{301}", String(repeating: "x", count: 300),
        String(repeating: "word ", count: 60), "https://example.com/a?b=c#d", "key=value", "C:\\path", "a]b",
        "--- a\nb", "a\n---\nb", "a\n...\nb", "# not a comment\nb", "  leading\nlines\n", "x\n\n\n", "\n\nx",
    ]

    static let trickyDoubles: [Double] = [
        0, -0.0, 1, -1.5, 0.1, 1e-10, 1e16, 1e300, .leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
        .infinity, -.infinity, .nan, 123456789.123456789, 2.5e-5, 1e15, 9007199254740992,
    ]

    @Test(arguments: trickyStrings)
    func stringRoundTrip(string: String) throws {
        let value: JSONValue = ["key": .string(string), .init(stringLiteral: string): "key", "list": [.string(string)]]
        let text = YAML.encode(value)
        let back = try YAML.decode(text)
        #expect(back == value, "\(text)")
        // Byte-exact, not just canonically equivalent.
        #expect(back["key"]?.stringValue.map { Array($0.utf8) } == Array(string.utf8), "\(text)")
        #expect(try YAML.decode(YAML.encode(.string(string))) == .string(string))
    }

    @Test func scalarRoundTrips() throws {
        var values: [JSONValue] = Self.trickyDoubles.map { .double($0) }
        values += [0, 1, -1, .int(Int.max), .int(Int.min), 8000, true, false, .null]
        var rng = SplitMix64(seed: 42)
        for _ in 0..<2_000 {
            values.append(.double(Double(bitPattern: rng.next())))
            values.append(.int(Int(truncatingIfNeeded: rng.next())))
        }
        for value in values {
            let text = YAML.encode(["v": value])
            let back = try YAML.decode(text)
            #expect(same(back["v"] ?? "missing", value), "\(text)")
        }
    }

    @Test func randomValuesRoundTrip() throws {
        var rng = SplitMix64(seed: 2024)
        for _ in 0..<500 {
            let value = randomValue(depth: 0, using: &rng)
            let text = YAML.encode(value)
            let back = try YAML.decode(text)
            #expect(same(back, value), "\(text)")
        }
        var documents: [JSONValue] = []
        for _ in 0..<20 { documents.append(randomValue(depth: 1, using: &rng)) }
        let stream = YAML.encode(documents: documents)
        let back = try YAML.decodeDocuments(stream)
        #expect(back.count == documents.count)
        #expect(zip(back, documents).allSatisfy { same($0, $1) })
    }

    private func randomValue(depth: Int, using rng: inout SplitMix64) -> JSONValue {
        let pick = Int.random(in: 0..<(depth >= 4 ? 6 : 9), using: &rng)
        switch pick {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return .int(Int.random(in: -100_000...100_000, using: &rng))
        case 3: return .double(Self.trickyDoubles.randomElement(using: &rng) ?? 0)
        case 4, 5: return .string(randomString(using: &rng))
        case 6:
            return .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in randomValue(depth: depth + 1, using: &rng) })
        default:
            var object: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0...5, using: &rng) {
                object[randomString(using: &rng)] = randomValue(depth: depth + 1, using: &rng)
            }
            return .object(object)
        }
    }

    private func randomString(using rng: inout SplitMix64) -> String {
        if Bool.random(using: &rng) { return Self.trickyStrings.randomElement(using: &rng) ?? "" }
        let pieces = ["a", "b", " ", "\n", "\t", "#", ":", "-", "'", "\"", "\\", "é", "\r", "0", "1", ".", "\u{85}",
                      "\u{2028}", "?", "|", ">", "!", "&", "*", "%", "@", "`", "{", "}", "[", "]", ",", "~", "🙂"]
        var s = ""
        for _ in 0..<Int.random(in: 0...10, using: &rng) { s += pieces.randomElement(using: &rng) ?? "" }
        return s
    }
}

/// Equality that also holds between NaNs.
private func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.double(let x), .double(let y)): return x == y || (x.isNaN && y.isNaN)
    case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
    case (.object(let x), .object(let y)):
        return x.count == y.count && x.allSatisfy { key, value in y[key].map { same(value, $0) } ?? false }
    default: return a == b
    }
}

/// A small seeded generator, so failures reproduce.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
