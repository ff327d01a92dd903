import NIOCore
import NIOPosix

/// Keep-alive HTTP/1.1 connections to the backend, one pool per event loop so a proxied request
/// and its upstream connection share a thread: no locks and no hops on the hot path.
///
/// A connection idle for `idleTimeout` is closed and never reused: vLLM's uvicorn closes idle
/// keep-alive connections after 5 s, and a request written just as it does would be lost — so the
/// pool gives them up first (4 s) instead of racing the backend and replaying requests.
final class UpstreamPool: @unchecked Sendable {
    // @unchecked: each LoopPool is touched only from its own event loop (asserted).
    private let pools: [ObjectIdentifier: LoopPool]
    let connectTimeout: TimeAmount

    init(group: any EventLoopGroup, connectTimeout: TimeAmount = .seconds(5), maxIdlePerLoop: Int = 64,
         idleTimeout: TimeAmount = .seconds(4)) {
        var pools: [ObjectIdentifier: LoopPool] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = LoopPool(eventLoop: loop, maxIdle: maxIdlePerLoop, idleTimeout: idleTimeout)
        }
        self.pools = pools
        self.connectTimeout = connectTimeout
    }

    /// An idle pooled connection to `target`, without a future (the warm path's common case).
    func takeIdle(_ target: UpstreamTarget, on eventLoop: any EventLoop) -> UpstreamConnection? {
        eventLoop.preconditionInEventLoop()
        return pools[ObjectIdentifier(eventLoop)]?.takeIdle(target)
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
        connection.handler.delegate = nil  // also lets a read held for the last client through
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
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // No HTTP codec: UpstreamHandler frames requests and reads responses as bytes.
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
    let idleTimeout: TimeAmount
    private var idle: [(connection: UpstreamConnection, since: NIODeadline)] = []
    private var sweep: Scheduled<Void>?

    init(eventLoop: any EventLoop, maxIdle: Int, idleTimeout: TimeAmount) {
        self.eventLoop = eventLoop
        self.maxIdle = maxIdle
        self.idleTimeout = idleTimeout
    }

    /// The most recently used live connection to `target` that has not been idle too long.
    func takeIdle(_ target: UpstreamTarget) -> UpstreamConnection? {
        let oldest = NIODeadline.now() - idleTimeout
        while let index = idle.lastIndex(where: { $0.connection.target == target }) {
            let (connection, since) = idle.remove(at: index)
            if connection.channel.isActive, since > oldest { return connection }
            connection.channel.close(promise: nil)
        }
        return nil
    }

    func putIdle(_ connection: UpstreamConnection) {
        if idle.count >= maxIdle { idle.removeFirst().connection.channel.close(promise: nil) }
        idle.append((connection, .now()))
        scheduleSweep()
    }

    /// Called once per connection, when it is created: a connection the backend closes while idle
    /// leaves the pool.
    func forget(_ channel: any Channel) {
        idle.removeAll { $0.connection.channel === channel }
    }

    func closeAll() {
        sweep?.cancel()
        sweep = nil
        for entry in idle { entry.connection.channel.close(promise: nil) }
        idle.removeAll()
    }

    /// One timer per loop, only while something is idle: closes what outlived the idle timeout.
    private func scheduleSweep() {
        guard sweep == nil, let first = idle.first else { return }
        let pool = NIOLoopBound(self, eventLoop: eventLoop)
        sweep = eventLoop.scheduleTask(deadline: first.since + idleTimeout) {
            let pool = pool.value
            pool.sweep = nil
            let oldest = NIODeadline.now() - pool.idleTimeout
            while let first = pool.idle.first, first.since <= oldest {
                pool.idle.removeFirst()
                first.connection.channel.close(promise: nil)
            }
            pool.scheduleSweep()
        }
    }
}
