// The OpenAI-compatible request and response shapes of /v1/chat/completions and /v1/completions.

/// The simulated model's answer, one token at a time, cycling. " ha" twice in a row makes two
/// byte-identical SSE events in a row, which a proxy must forward both of.
let simTokens: [String] = [
    "Hello", " ha", " ha", "!", " I", " am", " a", " simulated", " model", " served", " by",
    " vllm", "-", "sim", ".", "\n",
]

func simToken(_ index: Int) -> String { simTokens[index % simTokens.count] }

struct APIError: Error {
    let status: Int
    let message: String
    let type: String
    let param: String?

    static func badRequest(_ message: String, param: String? = nil) -> APIError {
        APIError(status: 400, message: message, type: "BadRequestError", param: param)
    }

    /// vLLM's `{"error": {...}}` object (the OpenAI error shape).
    var json: String {
        var out = "{\"error\":{\"message\":"
        appendJSONString(message, to: &out)
        out += ",\"type\":"
        appendJSONString(type, to: &out)
        out += ",\"param\":"
        if let param { appendJSONString(param, to: &out) } else { out += "null" }
        out += ",\"code\":\(status)}}"
        return out
    }
}

struct CompletionRequest {
    enum Kind { case chat, completion }

    let kind: Kind
    let id: String
    let created: Int
    let model: String
    let stream: Bool
    let includeUsage: Bool
    /// Tokens this request will generate.
    let tokens: Int
    let finishReason: String
    let promptTokens: Int

    /// Validates a request body like vLLM's OpenAI server does (the parts the simulator uses).
    static func parse(kind: Kind, body: [UInt8], engine: Engine) throws(APIError) -> CompletionRequest {
        let json: JSON
        do {
            json = try JSONParser.parse(body)
        } catch {
            throw .badRequest("Invalid JSON body: \(error)")
        }
        guard case .object = json else {
            throw .badRequest("The request body must be a JSON object.")
        }
        let config = engine.config
        if let model = json["model"], !model.isNull {
            guard let name = model.stringValue else {
                throw .badRequest("model must be a string", param: "model")
            }
            if name != config.servedModelName {
                throw APIError(
                    status: 404, message: "The model `\(name)` does not exist.",
                    type: "NotFoundError", param: "model")
            }
        }

        var promptTokens = 0
        switch kind {
        case .chat:
            guard case .array(let messages)? = json["messages"], !messages.isEmpty else {
                throw .badRequest("messages must be a non-empty list", param: "messages")
            }
            for message in messages {
                guard case .object = message else {
                    throw .badRequest("each message must be an object", param: "messages")
                }
                promptTokens += 4 + countTokens(message["content"])
            }
        case .completion:
            guard let prompt = json["prompt"], !prompt.isNull else {
                throw .badRequest("prompt is required", param: "prompt")
            }
            switch prompt {
            case .string(let s): promptTokens = countWords(s)
            case .array(let items) where !items.isEmpty:
                for item in items {
                    switch item {
                    case .string(let s): promptTokens += countWords(s)
                    case .number: promptTokens += 1
                    case .array(let ids): promptTokens += ids.count
                    default: throw .badRequest("prompt must be a string, a list of strings or token ids", param: "prompt")
                    }
                }
            default:
                throw .badRequest("prompt must be a string, a list of strings or token ids", param: "prompt")
            }
        }
        promptTokens = max(1, promptTokens)

        var maxTokens = config.maxTokensDefault
        let maxField = kind == .chat ? ["max_completion_tokens", "max_tokens"] : ["max_tokens"]
        for field in maxField {
            guard let v = json[field], !v.isNull else { continue }
            guard let n = v.intValue else {
                throw .badRequest("\(field) must be an integer", param: field)
            }
            guard n >= 1 else {
                throw .badRequest("\(field) must be at least 1, got \(n).", param: field)
            }
            maxTokens = n
            break
        }
        if promptTokens + maxTokens > config.maxModelLen {
            throw .badRequest(
                "This model's maximum context length is \(config.maxModelLen) tokens. However, you "
                    + "requested \(promptTokens + maxTokens) tokens (\(promptTokens) in the messages, "
                    + "\(maxTokens) in the completion). Please reduce the length of the messages or completion.",
                param: "max_tokens")
        }

        var stream = false
        if let v = json["stream"], !v.isNull {
            guard let b = v.boolValue else { throw .badRequest("stream must be a boolean", param: "stream") }
            stream = b
        }
        var includeUsage = false
        if let opts = json["stream_options"], !opts.isNull {
            guard stream else {
                throw .badRequest("Stream options can only be defined when `stream=True`.", param: "stream_options")
            }
            includeUsage = opts["include_usage"]?.boolValue ?? false
        }

        var tokens = maxTokens
        var finishReason = "length"
        if let natural = config.outputTokens, natural < maxTokens {
            tokens = natural
            finishReason = "stop"
        }
        return CompletionRequest(
            kind: kind,
            id: engine.makeRequestID(prefix: kind == .chat ? "chatcmpl-" : "cmpl-"),
            created: unixTime(), model: config.servedModelName, stream: stream,
            includeUsage: includeUsage, tokens: tokens, finishReason: finishReason,
            promptTokens: promptTokens)
    }

    // MARK: responses

    private var objectName: String { kind == .chat ? "chat.completion" : "text_completion" }
    private var chunkObjectName: String { kind == .chat ? "chat.completion.chunk" : "text_completion" }

    private var usageJSON: String {
        "{\"prompt_tokens\":\(promptTokens),\"total_tokens\":\(promptTokens + tokens),"
            + "\"completion_tokens\":\(tokens),\"prompt_tokens_details\":null}"
    }

    /// `{"id":…,"object":…,"created":…,"model":…,` — the common prefix of every object.
    private func header(object: String) -> String {
        var out = "{\"id\":\"\(id)\",\"object\":\"\(object)\",\"created\":\(created),\"model\":"
        appendJSONString(model, to: &out)
        out += ","
        return out
    }

    /// The whole non-streaming response.
    func fullResponse() -> String {
        var text = ""
        for i in 0..<tokens { text += simToken(i) }
        var out = header(object: objectName)
        switch kind {
        case .chat:
            out += "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
            appendJSONString(text, to: &out)
            out += ",\"refusal\":null,\"annotations\":null,\"audio\":null,\"function_call\":null,"
            out += "\"tool_calls\":[],\"reasoning_content\":null},\"logprobs\":null,"
            out += "\"finish_reason\":\"\(finishReason)\",\"stop_reason\":null}],"
            out += "\"service_tier\":null,\"system_fingerprint\":null,"
            out += "\"usage\":\(usageJSON),\"prompt_logprobs\":null,\"kv_transfer_params\":null}"
        case .completion:
            out += "\"choices\":[{\"index\":0,\"text\":"
            appendJSONString(text, to: &out)
            out += ",\"logprobs\":null,\"finish_reason\":\"\(finishReason)\",\"stop_reason\":null,"
            out += "\"prompt_logprobs\":null}],\"service_tier\":null,\"system_fingerprint\":null,"
            out += "\"usage\":\(usageJSON),\"kv_transfer_params\":null}"
        }
        return out
    }

    private func sse(_ json: String) -> String { "data: " + json + "\n\n" }

    /// The chat stream's first event: the assistant role with empty content (none for completions).
    func roleEvent() -> String? {
        guard kind == .chat else { return nil }
        return sse(
            header(object: chunkObjectName)
                + "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                + "\"logprobs\":null,\"finish_reason\":null}]\(usageNull)}")
    }

    /// vLLM adds `"usage":null` to every chunk when include_usage is set.
    private var usageNull: String { includeUsage ? ",\"usage\":null" : "" }

    /// The event carrying token number `index` (0-based).
    func tokenEvent(_ index: Int) -> String {
        var out = header(object: chunkObjectName)
        switch kind {
        case .chat:
            out += "\"choices\":[{\"index\":0,\"delta\":{\"content\":"
            appendJSONString(simToken(index), to: &out)
            out += "},\"logprobs\":null,\"finish_reason\":null}]"
        case .completion:
            out += "\"choices\":[{\"index\":0,\"text\":"
            appendJSONString(simToken(index), to: &out)
            out += ",\"logprobs\":null,\"finish_reason\":null,\"stop_reason\":null}]"
        }
        out += usageNull + "}"
        return sse(out)
    }

    /// The event with `finish_reason` (empty delta / text).
    func finishEvent() -> String {
        var out = header(object: chunkObjectName)
        switch kind {
        case .chat:
            out += "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
        case .completion:
            out += "\"choices\":[{\"index\":0,\"text\":\"\",\"logprobs\":null,"
        }
        out += "\"finish_reason\":\"\(finishReason)\",\"stop_reason\":null}]\(usageNull)}"
        return sse(out)
    }

    /// With `stream_options.include_usage`: the last event before [DONE], with empty choices.
    func usageEvent() -> String? {
        guard includeUsage else { return nil }
        return sse(header(object: chunkObjectName) + "\"choices\":[],\"usage\":\(usageJSON)}")
    }

    static let doneEvent = "data: [DONE]\n\n"
}

private func countWords(_ s: String) -> Int {
    var count = 0
    var inWord = false
    for b in s.utf8 {
        let space = b == 0x20 || b == 0x0A || b == 0x09 || b == 0x0D
        if !space && !inWord { count += 1 }
        inWord = !space
    }
    return count
}

/// Approximate prompt tokens of a message's content: words of a string, or of the text parts.
private func countTokens(_ content: JSON?) -> Int {
    switch content {
    case .string(let s)?: return countWords(s)
    case .array(let parts)?:
        var n = 0
        for part in parts {
            if let t = part["text"]?.stringValue { n += countWords(t) } else { n += 1 }
        }
        return n
    default: return 0
    }
}
