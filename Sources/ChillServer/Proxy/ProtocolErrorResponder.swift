import NIOCore
import NIOHTTP1

/// Answers requests the HTTP parser rejects, in the OpenAI error shape, before the connection is
/// closed: 431 when the headers exceed the decoder's limits (80 KB), 400 for anything else that is
/// not HTTP/1.x. NIO's `HTTPServerProtocolErrorHandler` does the same with an empty 400 for all.
/// Like it, this only answers when no other response has started, and passes the error on.
final class ProtocolErrorResponder: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var hasUnterminatedResponse = false

    static func answer(for error: HTTPParserError) -> OpenAIError {
        switch error {
        case .headerOverflow: OpenAIError.headersTooLarge
        default: OpenAIError.unparsableRequest("\(error)")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else { return context.fireErrorCaught(error) }
        // The decoder closes the channel right after this returns: write now, no delayed work.
        if !hasUnterminatedResponse {
            let answer = Self.answer(for: parserError)
            var headers = answer.headers
            headers.add(name: "connection", value: "close")
            headers.add(name: "content-length", value: String(answer.body.count))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: answer.status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: answer.body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code < 200: break
        case .head: hasUnterminatedResponse = true
        case .body: break
        case .end: hasUnterminatedResponse = false
        }
        context.write(data, promise: promise)
    }
}
