import NIOCore
import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// One per connection. NIO's pipelining handler in front of it hands over one request at a time,
/// so a connection has at most one request in progress.
final class HTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private static let maxBodyBytes = 32 * 1024 * 1024

    private let engine: Engine
    private var config: SimConfig { engine.config }

    // The request being read.
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var bodyTooLarge = false

    // The request being answered.
    private var keepAlive = true
    private var generation: Generation?
    private var channelActive = true

    /// A completion in progress: waiting for a scheduler slot, or generating.
    private final class Generation {
        enum Phase { case waiting(id: UInt64), running, finished }
        let request: CompletionRequest
        var phase: Phase
        var emitted = 0
        var timer: Scheduled<Void>?
        var started = NIODeadline.now()
        init(request: CompletionRequest, phase: Phase) {
            self.request = request
            self.phase = phase
        }
    }

    init(engine: Engine) {
        self.engine = engine
    }

    // MARK: reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            if let timingLog = engine.timingLog {
                timingLog.requestArrived(method: h.method.rawValue, path: h.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
            }
            body = nil
            bodyTooLarge = false
            // curl sends this for bodies over 1 KiB and waits a second unless answered (uvicorn
            // answers it too).
            if h.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                context.writeAndFlush(
                    wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: .continue))), promise: nil)
            }
        case .body(var chunk):
            guard !bodyTooLarge else { return }
            if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
            if body!.readableBytes > Self.maxBodyBytes {
                bodyTooLarge = true
                body = nil
            }
        case .end:
            guard let h = head else { return }
            head = nil
            let bytes = body.map { Array($0.readableBytesView) } ?? []
            body = nil
            keepAlive = h.isKeepAlive
            if bodyTooLarge {
                keepAlive = false
                sendError(context, APIError(status: 413, message: "Request body too large", type: "BadRequestError", param: nil))
                return
            }
            route(context, head: h, body: bytes)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        channelActive = false
        if let g = generation {
            abandon(g, outcome: .cancelled, reason: "client disconnected")
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    // MARK: routing

    private func route(_ context: ChannelHandlerContext, head: HTTPRequestHead, body: [UInt8]) {
        let uri = head.uri
        let path: Substring
        let query: Substring
        if let q = uri.firstIndex(of: "?") {
            path = uri[..<q]
            query = uri[uri.index(after: q)...]
        } else {
            path = uri[...]
            query = ""
        }
        let method = head.method

        func allow(_ methods: HTTPMethod...) -> Bool {
            if methods.contains(method) { return true }
            sendJSON(context, status: .methodNotAllowed, "{\"detail\":\"Method Not Allowed\"}")
            return false
        }

        switch path {
        case "/v1/chat/completions":
            if allow(.POST) { completion(context, kind: .chat, body: body) }
        case "/v1/completions":
            if allow(.POST) { completion(context, kind: .completion, body: body) }
        case "/health":
            if allow(.GET) {
                let dead = engine.isDead
                if !dead { engine.timingLog?.healthAnswered() }
                sendBody(context, status: dead ? .serviceUnavailable : .ok, contentType: nil, "")
            }
        case "/ping":
            if allow(.GET, .POST) {
                sendBody(context, status: engine.isDead ? .serviceUnavailable : .ok, contentType: nil, "")
            }
        case "/v1/models":
            if allow(.GET) { sendJSON(context, status: .ok, modelsJSON()) }
        case "/version":
            if allow(.GET) { sendJSON(context, status: .ok, "{\"version\":\"0.0.0+vllm-sim\"}") }
        case "/metrics":
            if allow(.GET) {
                sendBody(
                    context, status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8",
                    engine.prometheusText())
            }
        case "/sleep" where config.enableSleepMode:
            if allow(.POST) { sleep(context, query: query) }
        case "/wake_up" where config.enableSleepMode:
            if allow(.POST) { wakeUp(context) }
        case "/is_sleeping" where config.enableSleepMode:
            if allow(.GET) { sendJSON(context, status: .ok, "{\"is_sleeping\":\(engine.isSleeping)}") }
        case "/sim/kill-engine":
            if allow(.POST) {
                engine.markDead()
                logLine("vllm-sim: engine marked dead via /sim/kill-engine")
                sendBody(context, status: .ok, contentType: nil, "")
            }
        default:
            sendJSON(context, status: .notFound, "{\"detail\":\"Not Found\"}")
        }
    }

    private func modelsJSON() -> String {
        var name = ""
        appendJSONString(config.servedModelName, to: &name)
        let created = unixTime()
        return "{\"object\":\"list\",\"data\":[{\"id\":\(name),\"object\":\"model\",\"created\":\(created),"
            + "\"owned_by\":\"vllm\",\"root\":\(name),\"parent\":null,\"max_model_len\":\(config.maxModelLen),"
            + "\"permission\":[{\"id\":\"modelperm-vllm-sim\",\"object\":\"model_permission\","
            + "\"created\":\(created),\"allow_create_engine\":false,\"allow_sampling\":true,"
            + "\"allow_logprobs\":true,\"allow_search_indices\":false,\"allow_view\":true,"
            + "\"allow_fine_tuning\":false,\"organization\":\"*\",\"group\":null,\"is_blocking\":false}]}]}"
    }

    // MARK: sleep mode

    private func sleep(_ context: ChannelHandlerContext, query: Substring) {
        var level = 1
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.first == "level", kv.count == 2 {
                guard let l = Int(kv[1]), l == 1 || l == 2 else {
                    sendError(context, .badRequest("level must be 1 or 2", param: "level"))
                    return
                }
                level = l
            }
        }
        engine.beginSleep(level: level)
        log("POST /sleep?level=\(level)")
        after(context, seconds: config.sleepSeconds) { [self] in
            sendBody(context, status: .ok, contentType: nil, "")
        }
    }

    private func wakeUp(_ context: ChannelHandlerContext) {
        guard engine.beginWake() else {
            sendBody(context, status: .ok, contentType: nil, "")
            return
        }
        log("POST /wake_up")
        let engine = self.engine
        after(context, seconds: config.wakeSeconds) { [self] in
            engine.finishWake()
            sendBody(context, status: .ok, contentType: nil, "")
        }
    }

    /// Runs `body` on this connection's loop after `seconds` (at once for 0). It runs even when
    /// the client went away, so state transitions always complete.
    private func after(_ context: ChannelHandlerContext, seconds: Double, _ body: @escaping () -> Void) {
        if seconds <= 0 {
            body()
        } else {
            context.eventLoop.assumeIsolated().scheduleTask(in: nanoseconds(seconds)) { body() }
        }
    }

    // MARK: completions

    private func completion(_ context: ChannelHandlerContext, kind: CompletionRequest.Kind, body: [UInt8]) {
        engine.countCompletionRequest()
        if engine.isDead {
            sendError(
                context,
                APIError(
                    status: 500,
                    message: "EngineCore encountered an issue. See stack trace (above) for the root cause.",
                    type: "InternalServerError", param: nil))
            return
        }
        let request: CompletionRequest
        do {
            request = try CompletionRequest.parse(kind: kind, body: body, engine: engine)
        } catch {
            sendError(context, error)
            return
        }
        if engine.isSleeping {
            sendError(
                context,
                APIError(
                    status: 503, message: "The model is sleeping; POST /wake_up first.",
                    type: "ServiceUnavailableError", param: nil))
            return
        }

        if request.stream {
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "text/event-stream; charset=utf-8")
            headers.add(name: "cache-control", value: "no-cache")
            if !keepAlive { headers.add(name: "connection", value: "close") }
            // No content-length: NIO sends the body with chunked transfer encoding.
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.flush()
        }

        switch engine.admit(on: context.eventLoop) {
        case .running:
            let g = Generation(request: request, phase: .running)
            generation = g
            start(context, g)
        case .waiting(let id, let admitted):
            let g = Generation(request: request, phase: .waiting(id: id))
            generation = g
            admitted.assumeIsolated().whenSuccess { [self] in
                guard case .waiting = g.phase else {
                    // Cancelled after the slot was handed over: give the slot back.
                    engine.finish(.cancelled, promptTokens: 0, generatedTokens: 0)
                    return
                }
                g.phase = .running
                start(context, g)
            }
        }
    }

    /// Seconds from the start of generation until token `index` (0-based) is produced.
    private func offset(ofToken index: Int) -> Double {
        let interval = config.tokenInterval
        let ttft = config.firstTokenDelay > 0 ? config.firstTokenDelay : interval
        return ttft + Double(index) * interval
    }

    private func start(_ context: ChannelHandlerContext, _ g: Generation) {
        g.started = .now()
        if g.request.stream {
            if let fault = faultPoint(g), fault == 0 {
                fail(context, g)
                return
            }
            streamNext(context, g)
        } else {
            // Nothing is sent before the end, so one timer covers the whole generation.
            let tokens = g.request.tokens
            if let fault = faultPoint(g), fault <= tokens {
                schedule(context, g, at: fault == 0 ? 0 : offset(ofToken: fault - 1)) { [self] in
                    g.emitted = fault
                    fail(context, g)
                }
                return
            }
            schedule(context, g, at: offset(ofToken: tokens - 1)) { [self] in
                g.emitted = tokens
                complete(context, g)
                sendJSON(context, status: .ok, g.request.fullResponse())
            }
        }
    }

    /// The token count after which a fault flag strikes, if one is set.
    private func faultPoint(_ g: Generation) -> Int? {
        switch (config.crashMidStream, config.failMidStream) {
        case (let c?, let f?): return min(c, f)
        case (let c?, nil): return c
        case (nil, let f?): return f
        case (nil, nil): return nil
        }
    }

    private func schedule(
        _ context: ChannelHandlerContext, _ g: Generation, at seconds: Double, _ body: @escaping () -> Void
    ) {
        if seconds <= 0 {
            body()
            return
        }
        g.timer = context.eventLoop.assumeIsolated().scheduleTask(
            deadline: g.started + nanoseconds(seconds)
        ) {
            g.timer = nil
            body()
        }
    }

    /// Sends every token that is due, then waits for the next one.
    private func streamNext(_ context: ChannelHandlerContext, _ g: Generation) {
        let r = g.request
        let fault = faultPoint(g)
        while true {
            guard case .running = g.phase, channelActive else { return }
            if engine.isDead {
                abandon(g, outcome: .failed, reason: "engine dead")
                context.close(promise: nil)
                return
            }
            if g.emitted >= r.tokens {
                finishStream(context, g)
                return
            }
            let due = g.started + nanoseconds(offset(ofToken: g.emitted))
            if config.tokenInterval > 0 || config.firstTokenDelay > 0, due > .now() {
                g.timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: due) { [self] in
                    g.timer = nil
                    streamNext(context, g)
                }
                return
            }
            if g.emitted == 0, let role = r.roleEvent() {
                writeEvent(context, role)
            }
            writeEvent(context, r.tokenEvent(g.emitted))
            g.emitted += 1
            if let fault, g.emitted == fault {
                fail(context, g)
                return
            }
        }
    }

    private func finishStream(_ context: ChannelHandlerContext, _ g: Generation) {
        let r = g.request
        if r.tokens == 0, let role = r.roleEvent() { writeEvent(context, role) }
        writeEvent(context, r.finishEvent())
        if let usage = r.usageEvent() { writeEvent(context, usage) }
        writeEvent(context, CompletionRequest.doneEvent)
        complete(context, g)
        endResponse(context)
    }

    private func writeEvent(_ context: ChannelHandlerContext, _ event: String) {
        var buffer: ByteBuffer
        if config.chunkTimestamps, event.hasSuffix("}\n\n") {
            // `data: {…}\n\n` → `data: {…,"sim_sent_ns":N}\n\n`, N read as late as possible.
            buffer = context.channel.allocator.buffer(capacity: event.utf8.count + 40)
            buffer.writeSubstring(event.dropLast(3))
            buffer.writeString(",\"sim_sent_ns\":")
            buffer.writeString(String(monotonicNanoseconds()))
            buffer.writeString("}\n\n")
        } else {
            buffer = context.channel.allocator.buffer(string: event)
        }
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    }

    /// Generation ended normally: free the slot and count it.
    private func complete(_ context: ChannelHandlerContext, _ g: Generation) {
        g.phase = .finished
        generation = nil
        engine.finish(
            g.request.finishReason == "stop" ? .stop : .length,
            promptTokens: g.request.promptTokens, generatedTokens: g.emitted)
        log(
            "\(g.request.kind == .chat ? "POST /v1/chat/completions" : "POST /v1/completions") 200 "
                + "stream=\(g.request.stream) tokens=\(g.emitted) finish_reason=\(g.request.finishReason)")
    }

    /// Generation ended early (client gone, engine failure): free the slot or leave the queue.
    private func abandon(_ g: Generation, outcome: Engine.Outcome, reason: String) {
        g.timer?.cancel()
        g.timer = nil
        let phase = g.phase
        g.phase = .finished
        generation = nil
        switch phase {
        case .waiting(let id):
            // If the slot was already handed over, the admission callback gives it back.
            _ = engine.cancelWaiting(id: id)
        case .running:
            engine.finish(outcome, promptTokens: g.request.promptTokens, generatedTokens: g.emitted)
        case .finished:
            return
        }
        log("request \(g.request.id) abandoned after \(g.emitted) tokens: \(reason)")
    }

    /// A fault flag struck after `g.emitted` tokens.
    private func fail(_ context: ChannelHandlerContext, _ g: Generation) {
        if let c = config.crashMidStream, g.emitted >= c {
            logLine("vllm-sim: simulated engine crash after \(g.emitted) tokens of \(g.request.id), exiting")
            // Don't let anything else happen meanwhile.
            g.phase = .finished
            guard g.request.stream else { _exit(1) }
            // Exit once what was written reached the socket (an empty chunk writes nothing).
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer()))))
                .assumeIsolated().whenComplete { _ in _exit(1) }
            return
        }
        logLine("vllm-sim: simulated engine failure after \(g.emitted) tokens of \(g.request.id)")
        engine.markDead()
        abandon(g, outcome: .failed, reason: "engine failure")
        if g.request.stream {
            context.close(promise: nil)
        } else {
            sendError(
                context,
                APIError(
                    status: 500,
                    message: "EngineCore encountered an issue. See stack trace (above) for the root cause.",
                    type: "InternalServerError", param: nil))
        }
    }

    // MARK: writing

    private func sendError(_ context: ChannelHandlerContext, _ error: APIError) {
        log("error \(error.status): \(error.message)")
        sendJSON(context, status: HTTPResponseStatus(statusCode: error.status), error.json)
    }

    private func sendJSON(_ context: ChannelHandlerContext, status: HTTPResponseStatus, _ json: String) {
        sendBody(context, status: status, contentType: "application/json", json)
    }

    private func sendBody(
        _ context: ChannelHandlerContext, status: HTTPResponseStatus, contentType: String?, _ text: String
    ) {
        var headers = HTTPHeaders()
        if let contentType { headers.add(name: "content-type", value: contentType) }
        headers.add(name: "content-length", value: String(text.utf8.count))
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if !text.isEmpty {
            let buffer = context.channel.allocator.buffer(string: text)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        endResponse(context)
    }

    private func endResponse(_ context: ChannelHandlerContext) {
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    private func log(_ message: String) {
        if !config.quiet { logLine("vllm-sim: " + message) }
    }
}

private func nanoseconds(_ seconds: Double) -> TimeAmount {
    .nanoseconds(Int64((seconds * 1_000_000_000).rounded()))
}
