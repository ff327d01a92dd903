internal import CYaml

/// Writes `JSONValue` documents through libyaml's emitter.
enum YAMLEmitter {
    private final class Output {
        var bytes: [UInt8] = []
    }

    static func emit(_ documents: [JSONValue]) -> String {
        let output = Output()
        let emitter = UnsafeMutablePointer<yaml_emitter_t>.allocate(capacity: 1)
        defer { emitter.deallocate() }
        guard yaml_emitter_initialize(emitter) != 0 else { return "" }
        defer { yaml_emitter_delete(emitter) }

        yaml_emitter_set_output(
            emitter,
            { context, buffer, size in
                guard let context else { return 0 }
                let output = Unmanaged<Output>.fromOpaque(context).takeUnretainedValue()
                if let buffer, size > 0 {
                    output.bytes.append(contentsOf: UnsafeBufferPointer(start: buffer, count: size))
                }
                return 1
            },
            Unmanaged.passUnretained(output).toOpaque())
        yaml_emitter_set_unicode(emitter, 1)
        yaml_emitter_set_indent(emitter, 2)
        yaml_emitter_set_width(emitter, -1)
        yaml_emitter_set_break(emitter, YAML_LN_BREAK)

        var writer = Writer(emitter: emitter)
        withExtendedLifetime(output) {
            writer.streamStart()
            for document in documents {
                writer.documentStart()
                writer.node(document)
                writer.documentEnd()
            }
            writer.streamEnd()
            _ = yaml_emitter_flush(emitter)
        }
        return String(decoding: output.bytes, as: UTF8.self)
    }
}

private struct Writer {
    let emitter: UnsafeMutablePointer<yaml_emitter_t>
    /// Set once libyaml rejects an event; later events are skipped.
    var failed = false

    private mutating func emit(_ initialize: (inout yaml_event_t) -> Int32) {
        guard !failed else { return }
        var event = yaml_event_t()
        guard initialize(&event) != 0 else {
            failed = true
            return
        }
        // yaml_emitter_emit takes ownership of the event, also when it fails.
        if yaml_emitter_emit(emitter, &event) == 0 { failed = true }
    }

    mutating func streamStart() {
        emit { yaml_stream_start_event_initialize(&$0, YAML_UTF8_ENCODING) }
    }

    mutating func streamEnd() {
        emit { yaml_stream_end_event_initialize(&$0) }
    }

    mutating func documentStart() {
        emit { yaml_document_start_event_initialize(&$0, nil, nil, nil, 1) }
    }

    mutating func documentEnd() {
        emit { yaml_document_end_event_initialize(&$0, 1) }
    }

    mutating func node(_ value: JSONValue) {
        switch value {
        case .null:
            scalar("null", style: YAML_PLAIN_SCALAR_STYLE, plainImplicit: true)
        case .bool(let b):
            scalar(b ? "true" : "false", style: YAML_PLAIN_SCALAR_STYLE, plainImplicit: true)
        case .int(let i):
            scalar(String(i), style: YAML_PLAIN_SCALAR_STYLE, plainImplicit: true)
        case .double(let d):
            let text: String
            if d.isNaN { text = ".nan" }
            else if d.isInfinite { text = d < 0 ? "-.inf" : ".inf" }
            else { text = d.description }
            scalar(text, style: YAML_PLAIN_SCALAR_STYLE, plainImplicit: true)
        case .string(let s):
            string(s)
        case .array(let items):
            let style = items.isEmpty ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE
            emit { yaml_sequence_start_event_initialize(&$0, nil, nil, 1, style) }
            for item in items { node(item) }
            emit { yaml_sequence_end_event_initialize(&$0) }
        case .object(let object):
            let style = object.isEmpty ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE
            emit { yaml_mapping_start_event_initialize(&$0, nil, nil, 1, style) }
            for (key, item) in object.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
                string(key)
                node(item)
            }
            emit { yaml_mapping_end_event_initialize(&$0) }
        }
    }

    /// A string scalar in the most readable style that reads back as the same string.
    private mutating func string(_ s: String) {
        var hasNewline = false
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\n":
                hasNewline = true
            case "\r", "\u{85}", "\u{2028}", "\u{2029}":
                // Line breaks that a reader would normalise to "\n" in block and plain scalars.
                return scalar_(s, style: YAML_DOUBLE_QUOTED_SCALAR_STYLE)
            default:
                break
            }
        }
        if hasNewline {
            // libyaml falls back to double quotes where a literal block cannot hold the text.
            scalar_(s, style: YAML_LITERAL_SCALAR_STYLE)
        } else if YAMLScalar.needsQuotes(s) {
            scalar_(s, style: YAML_DOUBLE_QUOTED_SCALAR_STYLE)
        } else {
            // libyaml switches to single quotes where plain is not allowed (": ", "# ", leading "-" ...).
            scalar(s, style: YAML_PLAIN_SCALAR_STYLE, plainImplicit: true)
        }
    }

    /// A non-plain string scalar: implicit only in its quoted form.
    private mutating func scalar_(_ text: String, style: yaml_scalar_style_t) {
        scalar(text, style: style, plainImplicit: false)
    }

    private mutating func scalar(_ text: String, style: yaml_scalar_style_t, plainImplicit: Bool) {
        var text = text
        text.withUTF8 { utf8 in
            var empty: UInt8 = 0
            withUnsafePointer(to: &empty) { emptyPointer in
                let base = utf8.baseAddress ?? emptyPointer
                emit {
                    yaml_scalar_event_initialize(
                        &$0, nil, nil, base, Int32(clamping: utf8.count), plainImplicit ? 1 : 0, 1, style)
                }
            }
        }
    }
}
