#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOHTTP1
import NIOPosix

/// One `GET` over HTTP/1.1 on a NIO event loop, for the status code only; the connection is closed
/// after the response head. Health probes use it so a probe costs a socket, not a thread.
enum HTTPStatusProbe {
    struct Unreachable: Error, Sendable, CustomStringConvertible {
        var description: String
    }

    /// The answer's status code; throws `Unreachable` when there is no HTTP answer within `timeout`.
    static func status(host: String, port: Int, path: String, timeout: Duration, group: any EventLoopGroup) async throws -> Int {
        let loop = group.next()
        let promise = loop.makePromise(of: Int.self)
        let budget = TimeAmount.nanoseconds(max(1, Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000))
        let authority = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let deadline = loop.scheduleTask(in: budget) { promise.fail(Unreachable(description: "timed out")) }
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(budget)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(StatusHandler(authority: authority, path: path, promise: promise))
                }
            }
        // Pod IPs need no resolver round trip.
        let literal = try? SocketAddress(ipAddress: String(host.drop(while: { $0 == "[" }).prefix(while: { $0 != "]" })), port: port)
        let connected = literal.map { bootstrap.connect(to: $0) } ?? bootstrap.connect(host: host, port: port)
        connected.whenFailure { promise.fail(HTTPStatusProbe.describe($0)) }
        promise.futureResult.whenComplete { _ in
            deadline.cancel()
            connected.whenSuccess { $0.close(promise: nil) }
        }
        return try await promise.futureResult.get()
    }

    private static func describe(_ error: any Error) -> Unreachable {
        if let error = error as? NIOConnectionError {
            if error.connectionErrors.contains(where: { ($0.error as? IOError)?.errnoCode == ECONNREFUSED }) {
                return Unreachable(description: "connection refused")
            }
            if let dns = error.dnsAError ?? error.dnsAAAAError { return Unreachable(description: "host not found (\(dns))") }
        }
        if let error = error as? ChannelError, case .connectTimeout = error { return Unreachable(description: "timed out") }
        if let error = error as? IOError, error.errnoCode == ECONNREFUSED { return Unreachable(description: "connection refused") }
        return Unreachable(description: "\(error)")
    }
}

/// Sends the request once connected and completes the promise with the response's status.
private final class StatusHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let authority: String
    private let path: String
    private let promise: EventLoopPromise<Int>

    init(authority: String, path: String, promise: EventLoopPromise<Int>) {
        self.authority = authority
        self.path = path
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: authority)
        headers.add(name: "User-Agent", value: "chill-health-probe")
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            promise.succeed(Int(head.status.code))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(HTTPStatusProbe.Unreachable(description: "the connection closed before an answer"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(HTTPStatusProbe.Unreachable(description: "\(error)"))
        context.close(promise: nil)
    }
}
