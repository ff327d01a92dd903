import NIOCore
import NIOHTTP1
import NIOPosix

/// Keep-alive HTTP/1.1 connections to the backend, one pool per event loop so a proxied request
/// and its upstream connection share a thread: no locks and no hops on the hot path.
final class UpstreamPool: @unchecked Sendable {
    // @unchecked: each LoopPool is touched only from its own event loop (asserted).
    private let pools: [ObjectIdentifier: LoopPool]
    let connectTimeout: TimeAmount

    init(group: any EventLoopGroup, connectTimeout: TimeAmount = .seconds(5), maxIdlePerLoop: Int = 64) {
        var pools: [ObjectIdentifier: LoopPool] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = LoopPool(eventLoop: loop, maxIdle: maxIdlePerLoop)
        }
        self.pools = pools
        self.connectTimeout = connectTimeout
    }

    /// A connection to `target` on `eventLoop`: an idle pooled one, or a new one.
    func lease(_ target: UpstreamTarget, on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamConnection> {
        eventLoop.preconditionInEventLoop()
        guard let pool = pools[ObjectIdentifier(eventLoop)] else {
            return connect(target, on: eventLoop)
        }
        if let connection = pool.takeIdle(target) { return eventLoop.makeSucceededFuture(connection) }
        return connect(target, on: eventLoop)
    }

    /// Returns a connection whose exchange ended cleanly with keep-alive.
    func release(_ connection: UpstreamConnection) {
        connection.channel.eventLoop.preconditionInEventLoop()
        connection.handler.delegate = nil
        guard connection.channel.isActive, let pool = pools[ObjectIdentifier(connection.channel.eventLoop)] else {
            connection.channel.close(promise: nil)
            return
        }
        pool.putIdle(connection)
    }

    func closeAll() {
        for pool in pools.values {
            pool.eventLoop.execute { pool.closeAll() }
        }
    }

    private func connect(_ target: UpstreamTarget, on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamConnection> {
        let handler = UpstreamHandler()
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: target.host, port: target.port)
            .map { channel in
                if let pool = self.pools[ObjectIdentifier(eventLoop)] {
                    channel.closeFuture.whenComplete { _ in pool.forget(channel) }
                }
                return UpstreamConnection(channel: channel, handler: handler, target: target)
            }
    }
}

struct UpstreamConnection {
    let channel: any Channel
    let handler: UpstreamHandler
    let target: UpstreamTarget
}

private final class LoopPool: @unchecked Sendable {  // touched only on its event loop
    let eventLoop: any EventLoop
    let maxIdle: Int
    private var idle: [UpstreamConnection] = []

    init(eventLoop: any EventLoop, maxIdle: Int) {
        self.eventLoop = eventLoop
        self.maxIdle = maxIdle
    }

    func takeIdle(_ target: UpstreamTarget) -> UpstreamConnection? {
        while let index = idle.lastIndex(where: { $0.target == target }) {
            let connection = idle.remove(at: index)
            if connection.channel.isActive { return connection }
        }
        return nil
    }

    func putIdle(_ connection: UpstreamConnection) {
        if idle.count >= maxIdle { idle.removeFirst().channel.close(promise: nil) }
        idle.append(connection)
    }

    /// Called once per connection, when it is created: a connection the backend closes while idle
    /// leaves the pool.
    func forget(_ channel: any Channel) {
        idle.removeAll { $0.channel === channel }
    }

    func closeAll() {
        for connection in idle { connection.channel.close(promise: nil) }
        idle.removeAll()
    }
}

/// Receives what the backend sends and hands it to whichever client request leased the connection.
protocol UpstreamDelegate: AnyObject {
    func upstreamRead(_ part: HTTPClientResponsePart)
    func upstreamReadComplete()
    func upstreamClosed(error: (any Error)?)
    func upstreamWritabilityChanged(_ writable: Bool)
}

final class UpstreamHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    weak var delegate: (any UpstreamDelegate)?
    private var error: (any Error)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        delegate?.upstreamRead(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        delegate?.upstreamClosed(error: error)
        delegate = nil
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged(context.channel.isWritable)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.error = error
        context.close(promise: nil)
    }
}
