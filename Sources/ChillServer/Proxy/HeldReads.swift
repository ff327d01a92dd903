import NIOCore

/// A relay side's `read()`s, held while the other side cannot take more bytes (glue-handler style
/// back-pressure), or while requests the client pipelined wait over their bound. Used by both ends
/// of a relay: `ProxyHandler` for the client, `UpstreamHandler` for the backend.
struct HeldReads {
    private var peerWritable = true
    private var queueFull = false
    private var pending = false

    /// A `read()` from the pipeline: passed on, or held until the peer can take more.
    mutating func read(_ context: ChannelHandlerContext) {
        if peerWritable && !queueFull { context.read() } else { pending = true }
    }

    /// The peer's writability changed; a held read goes on once it is writable again.
    mutating func setPeerWritable(_ writable: Bool, _ context: ChannelHandlerContext?) {
        peerWritable = writable
        resume(context)
    }

    /// The queue of pipelined requests went over (or back under) its bound.
    mutating func setQueueFull(_ full: Bool, _ context: ChannelHandlerContext?) {
        queueFull = full
        resume(context)
    }

    private mutating func resume(_ context: ChannelHandlerContext?) {
        if peerWritable, !queueFull, pending, let context {
            pending = false
            context.read()
        }
    }
}
