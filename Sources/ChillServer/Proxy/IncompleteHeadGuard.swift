import NIOCore
import NIOHTTP1

/// Whether bytes of a request have arrived whose head is not decoded yet (a slow or stalled client:
/// slowloris). Shared by `IncompleteHeadGuard` and `ProxyHandler`, on one channel's event loop.
final class IncompleteHeadState {
    /// Between requests: the next bytes start a new request.
    var awaitingHead = true
    /// Bytes of a request arrived, and neither its head was decoded nor an answer written since.
    var partial = false

    /// Told by `ProxyHandler` (after the decoder), so no extra handler sits on every request part.
    func headDecoded() {
        awaitingHead = false
        partial = false
    }

    func requestEnded() { awaitingHead = true }
}

/// First in the pipeline (on raw bytes). When the connection is closed (the idle timeout, which
/// also bounds slow headers) while a request's head is still incomplete, it answers 408 first, so
/// the client learns why rather than seeing the connection drop.
final class IncompleteHeadGuard: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let state: IncompleteHeadState

    init(state: IncompleteHeadState) { self.state = state }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if state.awaitingHead { state.partial = true }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        state.partial = false
        context.write(data, promise: promise)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all, state.partial {
            state.partial = false
            let answer = OpenAIError.requestHeadTimeout
            let headers = HTTPHeaders([("content-type", "application/json"), ("content-length", String(answer.body.count)), ("connection", "close")])
            var bytes = context.channel.allocator.buffer(capacity: 128 + answer.body.count)
            HTTPHeadWriter.writeResponse(version: .http1_1, status: answer.status, headers: headers, into: &bytes)
            bytes.writeBytes(answer.body)
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(bytes)), promise: nil)
        }
        context.close(mode: mode, promise: promise)
    }
}
