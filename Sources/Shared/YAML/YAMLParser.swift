internal import CYaml

/// Builds `JSONValue` documents from libyaml's parser events.
enum YAMLParser {
    struct Document {
        var value: JSONValue
        /// 1-based position of the document's start.
        var line: Int
        var column: Int
    }

    /// The most nodes that aliases may expand to in one stream ("billion laughs" protection).
    static let maxAliasExpansion = 5_000_000
    /// The deepest nesting of collections accepted (deeper values would risk the stack elsewhere).
    static let maxDepth = 1_000

    static func parse(_ text: String) throws(YAMLError) -> [Document] {
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) != 0 else {
            throw YAMLError(line: 1, column: 1, message: "cannot initialize the YAML parser")
        }
        defer { yaml_parser_delete(parser) }

        let utf8 = Array(text.utf8)
        let input = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: utf8.count + 1)
        defer { input.deallocate() }
        _ = input.initialize(from: utf8)
        input[utf8.count] = 0
        guard let base = input.baseAddress else { return [] }
        yaml_parser_set_input_string(parser, base, utf8.count)

        var builder = Builder()
        var event = yaml_event_t()
        while true {
            guard yaml_parser_parse(parser, &event) != 0 else {
                throw parserError(parser.pointee, input: utf8)
            }
            defer { yaml_event_delete(&event) }
            if event.type == YAML_STREAM_END_EVENT { break }
            try builder.handle(event)
        }
        return builder.documents
    }

    private static func parserError(_ parser: yaml_parser_t, input: [UInt8]) -> YAMLError {
        let problem = parser.problem.map { String(cString: $0) } ?? "unknown error"
        if parser.error == YAML_MEMORY_ERROR {
            return YAMLError(line: Int(parser.mark.line) + 1, column: Int(parser.mark.column) + 1, message: "out of memory")
        }
        if parser.error == YAML_READER_ERROR {
            // The reader reports a byte offset rather than a mark.
            let (line, column) = position(ofByte: Int(parser.problem_offset), in: input)
            var message = problem
            if parser.problem_value != -1 {
                message += " (character #x\(String(UInt32(bitPattern: parser.problem_value), radix: 16, uppercase: true)))"
            }
            return YAMLError(line: line, column: column, message: message)
        }
        var message = problem
        if let context = parser.context {
            message += " (\(String(cString: context)) at line \(parser.context_mark.line + 1), column \(parser.context_mark.column + 1))"
        }
        return YAMLError(
            line: Int(parser.problem_mark.line) + 1, column: Int(parser.problem_mark.column) + 1, message: message)
    }

    /// 1-based line and column (in characters) of a byte offset.
    private static func position(ofByte offset: Int, in input: [UInt8]) -> (Int, Int) {
        var line = 1
        var column = 1
        for byte in input.prefix(max(0, offset)) {
            if byte == 0x0A {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return (line, column)
    }
}

// MARK: - Event handling

private struct Node {
    var value: JSONValue
    /// The scalar's text, used when the node is a mapping key; nil for collections.
    var keyText: String?
    var isMergeKey = false
    /// Nodes in this value counting alias expansions, for the alias-expansion limit.
    var size = 1
    var line: Int
    var column: Int
}

private struct Frame {
    var isMapping: Bool
    var anchor: String?
    var line: Int
    var column: Int
    var size = 1
    var items: [JSONValue] = []
    var entries: [String: JSONValue] = [:]
    var merged: [[String: JSONValue]] = []
    var pendingKey: String?
    var pendingMerge = false
}

private struct Builder {
    var documents: [YAMLParser.Document] = []
    private var stack: [Frame] = []
    private var anchors: [String: Node] = [:]
    private var anchorsInProgress: Set<String> = []
    private var root: Node?
    private var rootIsEmpty = false
    private var documentLine = 1
    private var documentColumn = 1
    private var aliasExpansion = 0

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        guard let pointer else { return nil }
        return String(cString: pointer)
    }

    mutating func handle(_ event: yaml_event_t) throws(YAMLError) {
        let line = Int(event.start_mark.line) + 1
        let column = Int(event.start_mark.column) + 1
        switch event.type {
        case YAML_DOCUMENT_START_EVENT:
            anchors = [:]
            anchorsInProgress = []
            stack = []
            root = nil
            rootIsEmpty = false
            documentLine = line
            documentColumn = column

        case YAML_DOCUMENT_END_EVENT:
            if let root, !rootIsEmpty {
                documents.append(.init(value: root.value, line: documentLine, column: documentColumn))
            }
            root = nil

        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            var text = ""
            if let value = scalar.value {
                text = String(decoding: UnsafeBufferPointer(start: value, count: scalar.length), as: UTF8.self)
            }
            let tag = Self.string(scalar.tag)
            let anchor = Self.string(scalar.anchor)
            let plain = scalar.style == YAML_PLAIN_SCALAR_STYLE
            let value = try Self.resolve(text, tag: tag, plain: plain, line: line, column: column)
            if stack.isEmpty && plain && text.isEmpty && tag == nil && anchor == nil { rootIsEmpty = true }
            let isMerge = (plain && tag == nil && text == "<<") || tag == "tag:yaml.org,2002:merge"
            try complete(Node(value: value, keyText: text, isMergeKey: isMerge, line: line, column: column), anchor: anchor)

        case YAML_ALIAS_EVENT:
            let name = Self.string(event.data.alias.anchor) ?? ""
            guard var node = anchors[name] else {
                let problem = anchorsInProgress.contains(name)
                    ? "alias *\(name) refers to a node that contains it" : "unknown anchor '\(name)' referenced"
                throw YAMLError(line: line, column: column, message: problem)
            }
            aliasExpansion += node.size
            if aliasExpansion > YAMLParser.maxAliasExpansion {
                throw YAMLError(line: line, column: column, message: "document contains excessive aliasing")
            }
            node.isMergeKey = false
            node.line = line
            node.column = column
            try complete(node, anchor: nil)

        case YAML_SEQUENCE_START_EVENT:
            guard stack.count < YAMLParser.maxDepth else { throw tooDeep(line: line, column: column) }
            let anchor = Self.string(event.data.sequence_start.anchor)
            if let anchor { anchorsInProgress.insert(anchor); anchors[anchor] = nil }
            stack.append(Frame(isMapping: false, anchor: anchor, line: line, column: column))

        case YAML_MAPPING_START_EVENT:
            guard stack.count < YAMLParser.maxDepth else { throw tooDeep(line: line, column: column) }
            let anchor = Self.string(event.data.mapping_start.anchor)
            if let anchor { anchorsInProgress.insert(anchor); anchors[anchor] = nil }
            stack.append(Frame(isMapping: true, anchor: anchor, line: line, column: column))

        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            guard let frame = stack.popLast() else { return }
            let value: JSONValue
            if frame.isMapping {
                if frame.merged.isEmpty {
                    value = .object(frame.entries)
                } else {
                    var result: [String: JSONValue] = [:]
                    for mapping in frame.merged {
                        result.merge(mapping, uniquingKeysWith: { first, _ in first })
                    }
                    result.merge(frame.entries, uniquingKeysWith: { _, explicit in explicit })
                    value = .object(result)
                }
            } else {
                value = .array(frame.items)
            }
            if let anchor = frame.anchor { anchorsInProgress.remove(anchor) }
            try complete(
                Node(value: value, keyText: nil, size: frame.size, line: frame.line, column: frame.column),
                anchor: frame.anchor)

        default:
            break
        }
    }

    private func tooDeep(line: Int, column: Int) -> YAMLError {
        YAMLError(line: line, column: column, message: "collections are nested more than \(YAMLParser.maxDepth) levels deep")
    }

    private mutating func complete(_ node: Node, anchor: String?) throws(YAMLError) {
        if let anchor { anchors[anchor] = node }
        guard !stack.isEmpty else {
            root = node
            return
        }
        let top = stack.count - 1
        stack[top].size += node.size
        if !stack[top].isMapping {
            stack[top].items.append(node.value)
            return
        }
        guard let key = stack[top].pendingKey else {
            guard let keyText = node.keyText else {
                throw YAMLError(line: node.line, column: node.column, message: "mapping keys must be scalars")
            }
            stack[top].pendingKey = keyText
            stack[top].pendingMerge = node.isMergeKey
            return
        }
        stack[top].pendingKey = nil
        if stack[top].pendingMerge {
            stack[top].pendingMerge = false
            switch node.value {
            case .object(let mapping):
                stack[top].merged.append(mapping)
            case .array(let list):
                for item in list {
                    guard case .object(let mapping) = item else {
                        throw YAMLError(
                            line: node.line, column: node.column,
                            message: "merge key (<<) value must be a mapping or a sequence of mappings")
                    }
                    stack[top].merged.append(mapping)
                }
            default:
                throw YAMLError(
                    line: node.line, column: node.column,
                    message: "merge key (<<) value must be a mapping or a sequence of mappings")
            }
        } else {
            stack[top].entries[key] = node.value
        }
    }

    private static func resolve(
        _ text: String, tag: String?, plain: Bool, line: Int, column: Int
    ) throws(YAMLError) -> JSONValue {
        func invalid(_ type: String) -> YAMLError {
            YAMLError(line: line, column: column, message: "invalid !!\(type) value \"\(text)\"")
        }
        switch tag {
        case nil:
            return plain ? YAMLScalar.resolvePlain(text) : .string(text)
        case "!", YAMLScalar.strTag:
            return .string(text)
        case YAMLScalar.intTag:
            guard let i = YAMLScalar.int(text) else { throw invalid("int") }
            return .int(i)
        case YAMLScalar.floatTag:
            guard let d = YAMLScalar.double(text) else { throw invalid("float") }
            return .double(d)
        case YAMLScalar.boolTag:
            guard let b = YAMLScalar.bool(text) else { throw invalid("bool") }
            return .bool(b)
        case YAMLScalar.nullTag:
            guard YAMLScalar.isNull(text) else { throw invalid("null") }
            return .null
        default:
            // Unknown or application tags (!!binary, !!timestamp, !Ref ...): read as if untagged.
            return plain ? YAMLScalar.resolvePlain(text) : .string(text)
        }
    }
}
