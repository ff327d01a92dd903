import NIOCore
import NIOHTTP1

/// Receives what the backend sends and hands it to whichever client request leased the connection.
protocol UpstreamDelegate: AnyObject {
    /// A response head (1xx ones too); returns whether a chunked body is to be decoded (for a client
    /// that cannot take chunks) rather than relayed as received.
    func upstreamHead(_ head: UpstreamResponseHead) -> Bool
    func upstreamBody(_ body: ByteBuffer)
    /// The response is complete.
    func upstreamEnd()
    func upstreamReadComplete()
    func upstreamClosed(error: (any Error)?)
    func upstreamWritabilityChanged(_ writable: Bool)
}

/// The upstream end of a relay, without an HTTP codec: it writes the request as bytes (the head
/// serialized once, small bodies in the same buffer) and reads the response with `ResponseFramer`,
/// whose head and body slices the client side forwards as they came.
///
/// Back-pressure is glue-handler style: while the client it relays to cannot take more bytes,
/// `read()` is held here instead of toggling `autoRead`, and the hold belongs to the lease —
/// clearing the delegate (the exchange ended, the connection goes back to the pool) lets any held
/// read through, so a pooled connection can never be left unable to read.
final class UpstreamHandler: ChannelDuplexHandler, @unchecked Sendable {  // touched only on its event loop
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    weak var delegate: (any UpstreamDelegate)? {
        didSet { if delegate == nil { setPeerWritable(true) } }
    }
    /// False once the connection's bytes went out of step with its exchanges (bytes after a
    /// response's end, a framing error): it must not go back to the pool.
    private(set) var isReusable = true
    private var error: (any Error)?
    private var context: ChannelHandlerContext?
    private var reads = HeldReads()
    private var framer = ResponseFramer()
    /// The current request's body goes in chunked framing (its length was not known up front).
    private var chunkedBody = false

    /// Request bodies up to this size are copied into the head's buffer: one write, one segment.
    static let coalesceLimit = 16 * 1024

    /// The client side's writability: reads from the backend wait while it is false.
    func setPeerWritable(_ writable: Bool) {
        reads.setPeerWritable(writable, context)
    }

    // MARK: - Writing the request

    /// Writes a request's head and the body parts read so far (and its end when `ended`); with
    /// `chunked` the body is sent in chunked framing, which the head must announce.
    func sendRequest(_ head: HTTPRequestHead, chunked: Bool, parts: [IOData], ended: Bool) {
        guard let context else { return }
        framer.expectResponse(toHEAD: head.method == .HEAD)
        chunkedBody = chunked
        var out = context.channel.allocator.buffer(capacity: 512)
        HTTPHeadWriter.write(head, into: &out)
        for part in parts {
            guard case .byteBuffer(var body) = part else { continue }
            if out.readableBytes + body.readableBytes <= Self.coalesceLimit {
                append(&body, to: &out)
            } else {
                if out.readableBytes > 0 { context.write(wrapOutboundOut(out), promise: nil) }
                out = context.channel.allocator.buffer(capacity: 16)
                sendBody(body)
            }
        }
        if ended && chunked { out.writeStaticString("0\r\n\r\n") }
        if out.readableBytes > 0 { context.write(wrapOutboundOut(out), promise: nil) }
    }

    func sendBody(_ body: ByteBuffer) {
        guard let context, body.readableBytes > 0 else { return }
        guard chunkedBody else { return context.write(wrapOutboundOut(body), promise: nil) }
        if body.readableBytes <= 4096 {
            var body = body
            var framed = context.channel.allocator.buffer(capacity: 20 + body.readableBytes)
            append(&body, to: &framed)
            return context.write(wrapOutboundOut(framed), promise: nil)
        }
        var chunkHeader = context.channel.allocator.buffer(capacity: 20)
        HTTPHeadWriter.writeChunkHeader(body.readableBytes, into: &chunkHeader)
        context.write(wrapOutboundOut(chunkHeader), promise: nil)
        context.write(wrapOutboundOut(body), promise: nil)
        context.write(wrapOutboundOut(context.channel.allocator.buffer(staticString: "\r\n")), promise: nil)
    }

    /// Appends `body` to `out`, in chunk framing when the request's body goes chunked. An empty part
    /// is skipped: as a chunk it would read as the body's end.
    private func append(_ body: inout ByteBuffer, to out: inout ByteBuffer) {
        guard body.readableBytes > 0 else { return }
        if chunkedBody { HTTPHeadWriter.writeChunkHeader(body.readableBytes, into: &out) }
        out.writeBuffer(&body)
        if chunkedBody { out.writeStaticString("\r\n") }
    }

    func sendEnd() {
        guard let context, chunkedBody else { return }
        context.write(wrapOutboundOut(context.channel.allocator.buffer(staticString: "0\r\n\r\n")), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func read(context: ChannelHandlerContext) {
        reads.read(context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        do {
            while let event = try framer.next(&buffer) {
                switch event {
                case .head(let head):
                    framer.decodeChunks = delegate?.upstreamHead(head) ?? false
                case .body(let body):
                    delegate?.upstreamBody(body)
                case .end:
                    // Bytes after the end answer nothing that was asked: this connection is out of step.
                    if buffer.readableBytes > 0 { isReusable = false }
                    delegate?.upstreamEnd()
                    if !isReusable { return context.close(promise: nil) }
                }
            }
        } catch {
            self.error = error
            isReusable = false
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        isReusable = false
        if framer.endsAtClose {
            // A body delimited by the close is complete now.
            framer = ResponseFramer()
            delegate?.upstreamEnd()
        } else {
            delegate?.upstreamClosed(error: error ?? (framer.inResponse ? ResponseFramer.FramingError.truncated : nil))
        }
        delegate = nil
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged(context.channel.isWritable)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.error = error
        isReusable = false
        context.close(promise: nil)
    }
}
