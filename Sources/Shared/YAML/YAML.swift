/// YAML reading and writing on top of libyaml, producing and consuming `JSONValue`.
///
/// Reading resolves plain scalars with the YAML 1.2 core schema (as Kubernetes does), supports
/// anchors, aliases and `<<` merge keys, and turns scalar mapping keys into their text.
/// Writing produces block-style YAML with sorted keys, like `kubectl get -o yaml`, and quotes any
/// string that a YAML 1.1 or 1.2 reader would take for something else.
public enum YAML {
    /// All documents of a (multi-document) YAML stream; empty documents (e.g. a trailing `---`) are skipped.
    public static func decodeDocuments(_ text: String) throws(YAMLError) -> [JSONValue] {
        try YAMLParser.parse(text).map(\.value)
    }

    /// Exactly one document; an empty stream is `.null`; more than one document is an error.
    public static func decode(_ text: String) throws(YAMLError) -> JSONValue {
        let documents = try YAMLParser.parse(text)
        if documents.count > 1 {
            let second = documents[1]
            throw YAMLError(
                line: second.line, column: second.column,
                message: "expected a single document but found \(documents.count)")
        }
        return documents.first?.value ?? .null
    }

    /// Block-style YAML of one value, keys sorted (like `kubectl get -o yaml`), ending with a newline.
    public static func encode(_ value: JSONValue) -> String {
        YAMLEmitter.emit([value])
    }

    /// Documents separated by `---` lines, for multi-object manifests.
    public static func encode(documents: [JSONValue]) -> String {
        YAMLEmitter.emit(documents)
    }
}

/// A YAML syntax or structure error, with the 1-based position libyaml reported.
public struct YAMLError: Error, CustomStringConvertible, Equatable, Sendable {
    /// 1-based line of the problem.
    public var line: Int
    /// 1-based column of the problem.
    public var column: Int
    public var message: String

    public init(line: Int, column: Int, message: String) {
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "YAML error at line \(line), column \(column): \(message)" }
}
