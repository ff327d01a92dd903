import Logging
import NIOCore
import NIOHTTP1

/// Everything a connection handler shares with the rest of the server.
final class ProxyEnvironment: Sendable {
    let models: ModelRegistry
    let pool: UpstreamPool
    let routes: LocalRoutes
    let metrics: MetricsHub?
    let maxBodySize: Int
    let idleConnectionTimeout: TimeAmount
    /// How long the backend may take to send a response's head once it has the request.
    let upstreamResponseTimeout: TimeAmount
    /// How long a client may pause while sending a request body.
    let bodyReadTimeout: TimeAmount
    let logger: Logger
    let shutdown: ShutdownFlag
    /// Bodies of held requests, all models together, stay within this budget.
    let heldBytes: ByteBudget
    /// Clients must send `Authorization: Bearer <key>` on `/v1/*` (nil: no key).
    let apiKey: APIKey?

    init(models: ModelRegistry, pool: UpstreamPool, routes: LocalRoutes, metrics: MetricsHub?, maxBodySize: Int, idleConnectionTimeout: TimeAmount,
         upstreamResponseTimeout: TimeAmount, bodyReadTimeout: TimeAmount, logger: Logger, shutdown: ShutdownFlag, heldBytes: ByteBudget, apiKey: APIKey?) {
        self.models = models
        self.pool = pool
        self.routes = routes
        self.metrics = metrics
        self.maxBodySize = maxBodySize
        self.idleConnectionTimeout = idleConnectionTimeout
        self.upstreamResponseTimeout = upstreamResponseTimeout
        self.bodyReadTimeout = bodyReadTimeout
        self.logger = logger
        self.shutdown = shutdown
        self.heldBytes = heldBytes
        self.apiKey = apiKey
    }
}

/// One client connection: serves chill's own routes, and relays everything else to the backend
/// part by part — request bodies streamed up, responses (SSE above all) streamed down and flushed
/// as they arrive, never buffered whole, never deduplicated. A cold request is held (its body
/// buffered, bounded) while the model wakes.
///
/// Back-pressure both ways is glue-handler style: a side's `read()` is held while the other side
/// cannot take more bytes (here for the client, in `UpstreamHandler` for the backend), and every
/// hold ends with the exchange that set it.
final class ProxyHandler: ChannelDuplexHandler, UpstreamDelegate {
    typealias InboundIn = HTTPServerRequestPart
    // Responses are bytes: relayed as the backend framed them, or serialized by HTTPHeadWriter.
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let env: ProxyEnvironment
    private var context: ChannelHandlerContext?
    private var state = State.idle
    private var request = RequestInfo()
    private var idleTimer: Scheduled<Void>?
    private var requestID = 0
    private var inClientRead = false
    /// Formatted once per connection, for X-Forwarded-For.
    private var clientAddress: String?
    /// Client reads, held while the backend connection of the current exchange cannot take more.
    private var clientReads = HeldReads()
    /// One timer per connection for the upstream response-header timeout, re-armed lazily.
    private var responseTimer: Scheduled<Void>?
    private var responseDeadline: NIODeadline?
    /// One timer per connection for `bodyReadTimeout`, armed only when a body spans reads.
    private var bodyTimer: Scheduled<Void>?
    /// When a body byte last arrived, while the request's end has not (nil: no body pending).
    private var bodyReadAt: NIODeadline?
    /// Requests the client pipelined behind the one being answered.
    private var pipelined = PipelinedRequests()
    private var drainingPipelined = false
    /// A response head (not 1xx) was written and its end not yet.
    private var responseOpen = false

    private enum State {
        case idle
        /// A chill-owned route; its (small) body is collected.
        case local(HTTPRequestHead, ByteBuffer)
        /// Reading the body only until its top-level `model` is known; parts are kept to replay.
        case routing(head: HTTPRequestHead, parts: [IOData], scanner: ModelFieldScanner)
        /// Waiting for a wake, or for an upstream connection; parts are kept to replay.
        case waiting(head: HTTPRequestHead, parts: [IOData], ended: Bool)
        /// Relaying.
        case streaming(UpstreamConnection)
        /// An answer is being written; the rest of the request is ignored.
        case discarding
    }

    private struct RequestInfo {
        var start: NIODeadline = .now()
        var keepAlive = true
        var version = HTTPVersion.http1_1
        var isHEAD = false
        /// The body came chunked (no length known up front): it goes upstream chunked too.
        var chunkedBody = false
        var countedInFlight = false
        var bufferedBytes = 0
        var requestEnded = false
        var responseStarted = false
        var responseStatus = 0
        var upstreamKeepAlive = true
        /// A copy of a small, complete request, to retry once on a fresh connection when a pooled
        /// one turns out to be closed before answering.
        var replay: (HTTPRequestHead, [IOData])?
        var retried = false
        var clientAddress: String?
        /// The model this request goes to, once known.
        var model: ServedModelHandle?
        /// The replica leased for it (given back when the request ends).
        var target: UpstreamTarget?
        /// Bytes of this request counted against the shared held-bytes budget.
        var heldBytes = 0
        /// Since when it waits for a routable replica of a model that is open (see `awaitTarget`).
        var targetWaitStarted: NIODeadline?
    }

    /// Where requests begin and end, for `IncompleteHeadGuard` (nil: no 408 for stalled heads).
    private let headState: IncompleteHeadState?

    init(environment: ProxyEnvironment, headState: IncompleteHeadState? = nil) {
        self.env = environment
        self.headState = headState
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        clientAddress = context.channel.remoteAddress?.ipAddress
        armIdleTimer()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        abandonRequest()
        self.context = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inClientRead = true
        let part = unwrapInboundIn(data)
        switch part {
        case .head: headState?.headDecoded()
        case .body: break
        case .end: headState?.requestEnded()
        }
        if pipelined.isEmpty && !awaitsResponse { receive(part) } else { enqueue(.part(part)) }
    }

    private func receive(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head): receiveHead(head)
        case .body(let body): receiveBody(body)
        case .end: receiveEnd()
        }
    }

    /// The current request is all read and its response not all written: what the client sends now
    /// belongs to a later request.
    private var awaitsResponse: Bool {
        if case .idle = state { return false }
        return request.requestEnded
    }

    private func enqueue(_ entry: PipelinedRequests.Entry) {
        pipelined.append(entry)
        if pipelined.isFull { clientReads.setQueueFull(true, context) }
    }

    /// A response was written whole: take up the requests pipelined behind it, in order, until one
    /// of them is waiting for its own response. Not re-entered: a request answered at once while
    /// draining returns here.
    private func drainPipelined() {
        guard !drainingPipelined else { return }
        drainingPipelined = true
        defer { drainingPipelined = false }
        while !awaitsResponse, context != nil, let entry = pipelined.popFirst() {
            switch entry {
            case .part(let part): receive(part)
            case .parserError(let error): return answerParserError(error)
            }
        }
        if !pipelined.isFull { clientReads.setQueueFull(false, context) }
    }

    /// Request parts read in one burst go upstream in one flush (one segment for a small POST).
    func channelReadComplete(context: ChannelHandlerContext) {
        inClientRead = false
        if bodyReadAt != nil, bodyTimer == nil { scheduleBodyCheck(in: env.bodyReadTimeout, context: context) }
        if case .streaming(let upstream) = state { upstream.handler.flush() }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // The client reads slower than the backend writes: hold reads of the backend until it catches up.
        if case .streaming(let upstream) = state { upstream.handler.setPeerWritable(context.channel.isWritable) }
        context.fireChannelWritabilityChanged()
    }

    /// Reads of the client wait while the backend cannot take more of its body.
    func read(context: ChannelHandlerContext) {
        clientReads.read(context)
    }

    private func setUpstreamWritable(_ writable: Bool) {
        clientReads.setPeerWritable(writable, context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parserError = error as? HTTPParserError {
            // After requests still being answered, the error waits its turn (as NIO's pipelining handler does).
            if !pipelined.isEmpty || awaitsResponse { return enqueue(.parserError(parserError)) }
            return answerParserError(parserError)
        }
        // The decoder reports every later read once it has failed; the queued answer closes the connection.
        if case ByteToMessageDecoderError.dataReceivedInErrorState = error, pipelined.hasParserError { return }
        env.logger.debug("client connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    /// What the client sent is not HTTP/1.x: say so in the OpenAI shape (unless a response is being
    /// written, which the close then cuts), and close the connection.
    private func answerParserError(_ error: HTTPParserError) {
        guard let context else { return }
        pipelined.removeAll()
        if !responseOpen {
            let answer = OpenAIError.forParserError(error)
            var headers = answer.headers
            headers.add(name: "connection", value: "close")
            headers.add(name: "content-length", value: String(answer.body.count))
            var out = context.channel.allocator.buffer(capacity: 256 + answer.body.count)
            HTTPHeadWriter.writeResponse(version: .http1_1, status: answer.status, headers: headers, into: &out)
            out.writeBytes(answer.body)
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        }
        context.close(promise: nil)
    }

    // MARK: - Request parts

    private func receiveHead(_ head: HTTPRequestHead) {
        idleSince = nil
        requestID += 1
        request = RequestInfo(start: .now(), keepAlive: head.isKeepAlive, version: head.version, isHEAD: head.method == .HEAD,
                              chunkedBody: head.headers.contains(name: "transfer-encoding"), clientAddress: clientAddress)
        bodyReadAt = request.start
        if env.shutdown.isSet {
            request.keepAlive = false
            return respond(OpenAIError.shuttingDown)
        }
        // HTTP/1.0 has no 1xx responses (RFC 9110 §15.2): such a client just sends its body.
        if head.version != .http1_0, head.headers.first(name: "expect")?.lowercased() == "100-continue" {
            if let context {
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n")), promise: nil)
            }
        }
        switch env.routes.route(for: head) {
        case .local:
            state = .local(head, context?.channel.allocator.buffer(capacity: 0) ?? ByteBuffer())
        case .proxy(let kind):
            if kind.needsAPIKey, let apiKey = env.apiKey, !apiKey.matches(authorization: head.headers.first(name: "authorization")) {
                return respond(OpenAIError.invalidAPIKey)
            }
            var upstreamHead = HeaderRewriting.upstreamRequestHead(head, clientAddress: request.clientAddress)
            upstreamHead.headers.remove(name: "expect")
            // The decoder took the client's chunks apart; the backend gets the body chunked again.
            if request.chunkedBody { upstreamHead.headers.add(name: "transfer-encoding", value: "chunked") }
            if let apiKey = env.apiKey { upstreamHead.headers.replaceOrAdd(name: "authorization", value: apiKey.bearer) }
            switch kind {
            case .metrics(let model):
                // `/metrics` while the model serves: relayed, but not activity that keeps GPUs awake.
                request.model = model
                state = .waiting(head: upstreamHead, parts: [], ended: false)
                connectUpstream()
            case .byModel:
                state = .routing(head: upstreamHead, parts: [], scanner: ModelFieldScanner())
            case .activeModel:
                state = .routing(head: upstreamHead, parts: [], scanner: ModelFieldScanner())
                resolveModel(.notJSON)
            }
        case .unavailable(let error):
            respond(error)
        }
    }

    /// The request's model is known (or known to be absent): send it there, or answer why not.
    private func resolveModel(_ scan: ModelFieldScanner.Result) {
        guard case .routing(let head, let parts, _) = state else { return }
        let requested: String?
        switch scan {
        case .pending: return
        case .found(let name): requested = name
        case .absent, .notJSON: requested = nil
        case .invalid: return respond(OpenAIError.invalidModelField)
        case .malformed: return respond(OpenAIError.malformedBody)
        }
        switch env.models.resolve(requested) {
        case .model(let handle):
            request.model = handle
        case .unknown(let name, let available):
            return respond(OpenAIError.unknownModel(name, available: available))
        case .noActiveModel(let available):
            return respond(OpenAIError.noActiveModel(available: available))
        }
        state = .waiting(head: head, parts: parts, ended: request.requestEnded)
        guard let model = request.model?.proxy else { return }
        if model.enterIfReady() {
            request.countedInFlight = true
            connectUpstream()
        } else {
            hold()
        }
    }

    private func receiveBody(_ body: ByteBuffer) {
        if bodyReadAt != nil { bodyReadAt = .now() }
        switch state {
        case .local(let head, var buffer):
            guard buffer.readableBytes + body.readableBytes <= 1 << 20 else { return respond(OpenAIError.bodyTooLarge(limit: 1 << 20)) }
            var body = body
            buffer.writeBuffer(&body)
            state = .local(head, buffer)
        case .routing(let head, var parts, var scanner):
            request.bufferedBytes += body.readableBytes
            guard request.bufferedBytes <= env.maxBodySize else { return respond(OpenAIError.bodyTooLarge(limit: env.maxBodySize)) }
            let result = scanner.feed(body.readableBytesView)
            parts.append(.byteBuffer(body))
            state = .routing(head: head, parts: parts, scanner: scanner)
            resolveModel(result)
        case .waiting(let head, var parts, let ended):
            request.bufferedBytes += body.readableBytes
            guard request.bufferedBytes <= env.maxBodySize else { return respond(OpenAIError.bodyTooLarge(limit: env.maxBodySize)) }
            if request.heldBytes > 0 || admission != nil {
                guard reserveHeld(body.readableBytes) else { return respond(OpenAIError.heldBytesExhausted(limit: env.heldBytes.limit)) }
            }
            parts.append(.byteBuffer(body))
            state = .waiting(head: head, parts: parts, ended: ended)
        case .streaming(let upstream):
            // The same bound as for buffered bodies: a warm model's body is streamed, not unlimited.
            request.bufferedBytes += body.readableBytes
            guard request.bufferedBytes <= env.maxBodySize else { return cutRequest(OpenAIError.bodyTooLarge(limit: env.maxBodySize)) }
            if request.replay != nil {
                if request.bufferedBytes <= 64 * 1024 { request.replay?.1.append(.byteBuffer(body)) } else { request.replay = nil }
            }
            upstream.handler.sendBody(body)
            if !inClientRead { upstream.handler.flush() }
        case .idle, .discarding:
            break
        }
    }

    private func receiveEnd() {
        request.requestEnded = true
        bodyReadAt = nil
        switch state {
        case .local(let head, let body):
            state = .discarding
            runLocal(head, body: body)
        case .routing(_, _, var scanner):
            resolveModel(scanner.finish())
        case .waiting(let head, let parts, _):
            state = .waiting(head: head, parts: parts, ended: true)
        case .streaming(let upstream):
            upstream.handler.sendEnd()
            if !inClientRead { upstream.handler.flush() }
        case .idle, .discarding:
            break
        }
    }

    /// The request cannot go on (its body past `--max-body-size` while relaying, or stalled): the
    /// backend's request is cut (its connection closed), and the client gets `error` if nothing of the
    /// response was sent yet; the connection closes either way.
    private func cutRequest(_ error: OpenAIError) {
        if case .streaming(let upstream) = state {
            upstream.handler.delegate = nil
            upstream.channel.close(promise: nil)
            setUpstreamWritable(true)
            responseDeadline = nil
        }
        if request.responseStarted {
            state = .discarding
            endRequest()
            context?.close(promise: nil)
        } else {
            request.keepAlive = false
            respond(error)
        }
    }

    // MARK: - Cold path: hold until the model serves

    private func hold() {
        guard let context, let model = request.model?.proxy else { return }
        // The body read so far is kept while the model wakes: it counts against the shared budget.
        guard reserveHeld(request.bufferedBytes) else { return respond(OpenAIError.heldBytesExhausted(limit: env.heldBytes.limit)) }
        let id = requestID
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let task = Task {
            let result: Result<Void, any Error>
            do { try await model.admit(); result = .success(()) } catch { result = .failure(error) }
            bound.eventLoop.execute {
                bound.value.admissionFinished(id: id, result: result)
            }
        }
        admission = task
    }

    private var admission: Task<Void, Never>?

    private func admissionFinished(id: Int, result: Result<Void, any Error>) {
        admission = nil
        guard id == requestID, context != nil, case .waiting = state, let model = request.model?.proxy else {
            // The client left while we waited; give the slot back.
            if case .success = result { request.model?.proxy.exit() }
            return
        }
        switch result {
        case .success:
            request.countedInFlight = true
            connectUpstream()
        case .failure(AdmissionError.tooManyHeld(let limit)):
            respond(OpenAIError.tooManyHeld(limit: limit, model: model.name))
        case .failure(AdmissionError.shuttingDown):
            respond(OpenAIError.shuttingDown)
        case .failure(AdmissionError.wakeFailed(let failure)):
            respond(OpenAIError.wakeFailed(failure, model: model.name))
        case .failure(let error):
            respond(OpenAIError.backendUnavailable(model: model.name, detail: "\(error)"))
        }
    }

    /// Counts bytes of a held request against the shared budget; false when it is spent.
    private func reserveHeld(_ bytes: Int) -> Bool {
        guard bytes > 0 else { return true }
        guard env.heldBytes.reserve(bytes) else { return false }
        request.heldBytes += bytes
        return true
    }

    private func releaseHeld() {
        if request.heldBytes > 0 {
            env.heldBytes.release(request.heldBytes)
            request.heldBytes = 0
        }
    }

    // MARK: - Relaying

    private func connectUpstream() {
        guard let context, let model = request.model?.proxy else { return }
        releaseHeld()
        returnTarget()
        guard let target = model.leaseTarget() else { return awaitTarget(model) }
        request.targetWaitStarted = nil
        request.target = target
        if case .waiting(let head, let parts, let ended) = state, let pooled = env.pool.takeIdle(target, on: context.eventLoop) {
            return startStreaming(pooled, head: head, parts: parts, ended: ended)
        }
        let id = requestID
        env.pool.lease(target, on: context.eventLoop).assumeIsolated().whenComplete { [self] result in
            guard id == requestID, self.context != nil, case .waiting(let head, let parts, let ended) = state else {
                if case .success(let connection) = result { env.pool.release(connection) }
                return
            }
            switch result {
            case .success(let connection):
                startStreaming(connection, head: head, parts: parts, ended: ended)
            case .failure(let error):
                respond(OpenAIError.backendUnavailable(model: model.name, detail: "\(error)"))
            }
        }
    }

    /// The model is open but no replica is routable: its pods and its lifecycle disagree for a moment
    /// (a pod going away as a scale-down is cancelled, a new one not probed yet). Look again shortly
    /// instead of failing the request; once the lifecycle notices (the gate closes), hold it like any
    /// cold request. Bounded: then 503.
    private func awaitTarget(_ model: any ProxyModel) {
        guard let context else { return }
        let now = NIODeadline.now()
        let started = request.targetWaitStarted ?? now
        request.targetWaitStarted = started
        guard now - started < .seconds(10) else {
            return respond(OpenAIError.backendUnavailable(model: model.name, detail: "no ready replica"))
        }
        let id = requestID
        context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(20)) { [self] in
            guard id == requestID, self.context != nil, case .waiting = state else { return }
            if model.isServing { return connectUpstream() }
            if request.countedInFlight {
                request.countedInFlight = false
                model.exit()
            }
            hold()
        }
    }

    private func returnTarget() {
        if let target = request.target {
            request.target = nil
            request.model?.proxy.returnTarget(target)
        }
    }

    private func startStreaming(_ connection: UpstreamConnection, head: HTTPRequestHead, parts: [IOData], ended: Bool) {
        state = .streaming(connection)
        connection.handler.delegate = self
        if !request.retried, request.bufferedBytes <= 64 * 1024, head.isReplayable { request.replay = (head, parts) }
        connection.handler.sendRequest(head, chunked: request.chunkedBody, parts: parts, ended: ended)
        // Inside a client read, channelReadComplete flushes once the rest of the burst is written.
        if !inClientRead { connection.handler.flush() }
        connection.handler.setPeerWritable(context?.channel.isWritable ?? true)
        setUpstreamWritable(connection.channel.isWritable)
        armResponseTimer()
    }

    func upstreamHead(_ head: UpstreamResponseHead) -> Bool {
        guard let context, case .streaming = state, head.status >= 200 else { return false }  // 1xx: we answered Expect ourselves
        request.responseStarted = true
        responseDeadline = nil
        request.replay = nil
        request.responseStatus = head.status
        request.upstreamKeepAlive = head.keepAlive
        let http10 = request.version == .http1_0
        // HTTP/1.0 has no chunks: such a body is decoded and ends with the close, as does one the
        // backend itself ends by closing.
        let decodeChunks = http10 && head.framing == .chunked
        if decodeChunks || head.framing == .untilClose { request.keepAlive = false }
        responseOpen = true
        if !http10, request.keepAlive, head.minorVersion == 1, !head.needsRewrite {
            context.write(wrapOutboundOut(head.bytes), promise: nil)  // the warm path: forwarded untouched
        } else {
            let rewritten = head.rewritten(keepAlive: request.keepAlive, http10: http10, relaysChunks: !decodeChunks,
                                           allocator: context.channel.allocator)
            context.write(wrapOutboundOut(rewritten), promise: nil)
        }
        return decodeChunks
    }

    func upstreamBody(_ body: ByteBuffer) {
        guard let context, case .streaming = state else { return }
        context.write(wrapOutboundOut(body), promise: nil)
    }

    func upstreamEnd() {
        guard case .streaming(let upstream) = state else { return }
        upstream.handler.delegate = nil
        setUpstreamWritable(true)
        if request.requestEnded && request.upstreamKeepAlive && upstream.handler.isReusable {
            env.pool.release(upstream)
        } else {
            upstream.channel.close(promise: nil)
        }
        state = .idle
        finishResponse(last: nil)
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamWritabilityChanged(_ writable: Bool) {
        setUpstreamWritable(writable)
    }

    func upstreamClosed(error: (any Error)?) {
        guard case .streaming = state else { return }
        setUpstreamWritable(true)
        responseDeadline = nil
        if !request.responseStarted {
            // Closed before answering. Only a request that is safe to repeat (GET, HEAD, OPTIONS, or one
            // with an Idempotency-Key) is replayed, once, on a fresh connection: a POST the backend may
            // already have received is not silently sent twice (the pool retires idle connections before
            // the backend would close them, so a stale one is rare).
            if let (head, parts) = request.replay, !request.retried {
                request.retried = true
                request.replay = nil
                state = .waiting(head: head, parts: parts, ended: request.requestEnded)
                return connectUpstream()
            }
            state = .discarding
            let why = error.map { "\($0)" } ?? "the backend closed the connection before answering"
            respond(OpenAIError.backendClosed(model: request.model?.servedName ?? "", detail: "\(why) (not retried: it may have been processed)"))
        } else {
            // Mid-response: the only honest signal left is to close the client connection.
            state = .discarding
            endRequest()
            context?.close(promise: nil)
        }
    }

    // MARK: - Local routes and answers

    private func runLocal(_ head: HTTPRequestHead, body: ByteBuffer) {
        guard let context else { return }
        let id = requestID
        let routes = env.routes
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        Task {
            let response = await routes.handle(head, body: body)
            bound.eventLoop.execute {
                let handler = bound.value
                guard id == handler.requestID else { return }
                handler.writeLocal(response)
            }
        }
    }

    private func writeLocal(_ response: LocalResponse, recordMetrics: Bool = false) {
        guard let context else { return }
        var headers = response.headers
        headers.replaceOrAdd(name: "content-length", value: String(response.body.count))
        // An answer before the request's end (its body is dropped) closes the connection: say so.
        if !request.keepAlive || !request.requestEnded { headers.replaceOrAdd(name: "connection", value: "close") }
        else if request.version == .http1_0 { headers.replaceOrAdd(name: "connection", value: "keep-alive") }
        request.responseStatus = Int(response.status.code)
        responseOpen = true
        // A response to HEAD says the length its GET would have, without the body.
        let body = request.isHEAD ? [] : response.body
        var out = context.channel.allocator.buffer(capacity: 256 + body.count)
        HTTPHeadWriter.writeResponse(version: request.version == .http1_0 ? .http1_0 : .http1_1, status: response.status,
                                     headers: headers, into: &out)
        out.writeBytes(body)
        finishResponse(last: out, recordMetrics: recordMetrics)
    }

    private func respond(_ error: OpenAIError) {
        admission?.cancel()
        admission = nil
        releaseHeld()
        state = .discarding
        if error.status == .payloadTooLarge { request.keepAlive = false }
        writeLocal(LocalResponse(status: error.status, headers: error.headers, body: error.body), recordMetrics: true)
    }

    /// The response is written but for `last`: count it, and keep or close the connection.
    private func finishResponse(last: ByteBuffer?, recordMetrics: Bool = true) {
        guard let context else { return }
        let keepAlive = request.keepAlive && !env.shutdown.isSet
        let closeAfter = !keepAlive || !request.requestEnded
        if recordMetrics {
            if let metrics = request.model?.proxy.metrics {
                metrics.recordRequest(code: request.responseStatus, duration: .nanoseconds((NIODeadline.now() - request.start).nanoseconds))
            } else {
                env.metrics?.recordUnrouted(code: request.responseStatus)
            }
        }
        endRequest()
        // Unless the rest of the body is to be dropped (then we close), ready for the next request.
        if case .discarding = state, !request.requestEnded {} else {
            state = .idle
            armIdleTimer()
        }
        responseOpen = false
        if closeAfter {
            pipelined.removeAll()
            context.writeAndFlush(wrapOutboundOut(last ?? context.channel.allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { [weak self] _ in
                self?.context?.close(promise: nil)
            }
        } else {
            if let last { context.write(wrapOutboundOut(last), promise: nil) }
            context.flush()
            drainPipelined()
        }
    }

    /// The request is over (answered, failed or abandoned): leave the in-flight count once.
    private func endRequest() {
        releaseHeld()
        returnTarget()
        if request.countedInFlight {
            request.countedInFlight = false
            request.model?.proxy.exit()
        }
    }

    /// The client went away: cancel whatever works for it, upstream first.
    private func abandonRequest() {
        admission?.cancel()
        admission = nil
        if case .streaming(let upstream) = state {
            upstream.handler.delegate = nil
            upstream.channel.close(promise: nil)
        }
        state = .idle
        responseTimer?.cancel()
        responseTimer = nil
        bodyTimer?.cancel()
        bodyTimer = nil
        endRequest()
    }

    /// The client stopped sending its body for `bodyReadTimeout`: 408 (see `cutRequest`).
    private func scheduleBodyCheck(in delay: TimeAmount, context: ChannelHandlerContext) {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        bodyTimer = context.eventLoop.scheduleTask(in: delay) {
            let handler = bound.value
            handler.bodyTimer = nil
            guard let readAt = handler.bodyReadAt, let context = handler.context else { return }
            let remaining = readAt + handler.env.bodyReadTimeout - .now()
            guard remaining <= .zero else { return handler.scheduleBodyCheck(in: remaining, context: context) }
            handler.bodyReadAt = nil
            handler.cutRequest(OpenAIError.requestBodyTimeout(after: handler.env.bodyReadTimeout))
        }
    }

    /// The backend has `upstreamResponseTimeout` to start answering a request it was sent (vLLM sends
    /// a non-streaming completion's head only when it is done, so the default is generous). One timer
    /// per connection, re-armed lazily, as for the idle timeout.
    private func armResponseTimer() {
        responseDeadline = .now() + env.upstreamResponseTimeout
        guard responseTimer == nil, let context else { return }
        scheduleResponseCheck(in: env.upstreamResponseTimeout, context: context)
    }

    private func scheduleResponseCheck(in delay: TimeAmount, context: ChannelHandlerContext) {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        responseTimer = context.eventLoop.scheduleTask(in: delay) {
            let handler = bound.value
            handler.responseTimer = nil
            guard let deadline = handler.responseDeadline, let context = handler.context,
                  case .streaming(let upstream) = handler.state else { return }
            let remaining = deadline - .now()
            guard remaining <= .zero else { return handler.scheduleResponseCheck(in: remaining, context: context) }
            handler.responseDeadline = nil
            upstream.handler.delegate = nil
            upstream.channel.close(promise: nil)
            handler.setUpstreamWritable(true)
            handler.respond(OpenAIError.upstreamTimeout(model: handler.request.model?.servedName ?? "", after: handler.env.upstreamResponseTimeout))
        }
    }

    /// Closes the connection after `idleConnectionTimeout` without a request. One timer per
    /// connection, re-armed lazily when it fires, so keep-alive requests don't each schedule one.
    private func armIdleTimer() {
        idleSince = .now()
        guard idleTimer == nil, let context else { return }
        scheduleIdleCheck(in: env.idleConnectionTimeout, context: context)
    }

    private var idleSince: NIODeadline? = .now()

    private func scheduleIdleCheck(in delay: TimeAmount, context: ChannelHandlerContext) {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(in: delay) {
            let handler = bound.value
            handler.idleTimer = nil
            guard case .idle = handler.state, let since = handler.idleSince, let context = handler.context else { return }
            let remaining = since + handler.env.idleConnectionTimeout - .now()
            if remaining <= .zero { context.close(promise: nil) } else { handler.scheduleIdleCheck(in: remaining, context: context) }
        }
    }
}

extension HTTPRequestHead {
    /// Safe to send again when the backend closed before answering (RFC 9110 §9.2.2, and the
    /// Idempotency-Key convention).
    var isReplayable: Bool {
        switch method {
        case .GET, .HEAD, .OPTIONS: true
        default: headers.contains(name: "idempotency-key")
        }
    }
}

extension SocketAddress {
    var ipAddress: String? {
        switch self {
        case .v4(let a): a.host
        case .v6(let a): a.host
        default: nil
        }
    }
}
