import NIOCore

/// A relay side's `read()`s, held while the other side cannot take more bytes (glue-handler style
/// back-pressure). Used by both ends of a relay: `ProxyHandler` for the client, `UpstreamHandler` for
/// the backend.
struct HeldReads {
    private var peerWritable = true
    private var pending = false

    /// A `read()` from the pipeline: passed on, or held until the peer can take more.
    mutating func read(_ context: ChannelHandlerContext) {
        if peerWritable { context.read() } else { pending = true }
    }

    /// The peer's writability changed; a held read goes on once it is writable again.
    mutating func setPeerWritable(_ writable: Bool, _ context: ChannelHandlerContext?) {
        peerWritable = writable
        if writable, pending, let context {
            pending = false
            context.read()
        }
    }
}
