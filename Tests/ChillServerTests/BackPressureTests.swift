import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import Testing
@testable import ChillServer

/// Back-pressure and pooling: a read held for a slow client belongs to that exchange, and pooled
/// connections retire before the backend's keep-alive would close them.
@Suite struct BackPressureTests {
    /// Counts the `read()`s that get past the handler under test.
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    final class NullDelegate: UpstreamDelegate {
        func upstreamHead(_ head: UpstreamResponseHead) -> Bool { false }
        func upstreamBody(_ body: ByteBuffer) {}
        func upstreamEnd() {}
        func upstreamReadComplete() {}
        func upstreamClosed(error: (any Error)?) {}
        func upstreamWritabilityChanged(_ writable: Bool) {}
    }

    @Test func aReadHeldForASlowClientIsLetThroughWhenTheConnectionGoesBackToThePool() throws {
        let channel = EmbeddedChannel()
        let counter = ReadCounter()
        let upstream = UpstreamHandler()
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHandler(upstream)
        let delegate = NullDelegate()
        upstream.delegate = delegate

        channel.read()
        #expect(counter.reads == 1)
        upstream.setPeerWritable(false)
        channel.read()
        channel.read()
        #expect(counter.reads == 1, "reads wait while the client cannot take more")
        upstream.setPeerWritable(true)
        #expect(counter.reads == 2, "the held read goes on once the client caught up")

        // The exchange ends while the client is still unwritable (its last bytes are queued):
        // releasing the connection ends the hold, so the pooled connection can read its next answer.
        upstream.setPeerWritable(false)
        channel.read()
        #expect(counter.reads == 2)
        upstream.delegate = nil
        #expect(counter.reads == 3)
        channel.read()
        #expect(counter.reads == 4, "a pooled connection reads freely")
        _ = try channel.finish()
    }

    @Test(.timeLimit(.minutes(1)))
    func pooledConnectionsAreReusedAndRetiredAfterTheIdleTimeout() async throws {
        let sim = try await VLLMSim.launch(args: ["--tokens-per-second", "0"])
        defer { sim.kill() }
        let group = MultiThreadedEventLoopGroup.singleton
        let loop = group.next()
        let target = UpstreamTarget(host: "127.0.0.1", port: sim.port)

        // Reused while fresh (a long idle timeout: no timing involved).
        let patient = UpstreamPool(group: group, idleTimeout: .seconds(600))
        let kept = try await loop.flatSubmit { patient.lease(target, on: loop) }.get()
        try await loop.submit { patient.release(kept) }.get()
        let again = try await loop.flatSubmit { patient.lease(target, on: loop) }.get()
        #expect(again.channel === kept.channel, "an idle connection is reused while fresh")
        try await again.channel.close()

        let pool = UpstreamPool(group: group, idleTimeout: .milliseconds(100))
        let first = try await loop.flatSubmit { pool.lease(target, on: loop) }.get()
        try await loop.submit { pool.release(first) }.get()

        // Left idle: the pool closes it (before a backend's 5 s keep-alive would) and never hands it out.
        try await E2EWait.until("the idle connection closed by the pool", timeout: .seconds(10)) {
            (!first.channel.isActive, "still open")
        }
        let fresh = try await loop.flatSubmit { pool.lease(target, on: loop) }.get()
        #expect(fresh.channel !== first.channel)
        try await fresh.channel.close()
    }

    /// The leak the old `autoRead` toggling allowed: a slow client on a long stream, then more
    /// requests on the same event loop, which reuse the stream's pooled upstream connection.
    @Test(.timeLimit(.minutes(1)))
    func aSlowClientOnALongStreamLeavesThePoolUsable() async throws {
        try await ProxyEndToEndTests.withProcessChill(
            idle: "5m", sim: ["--tokens-per-second", "0", "--max-model-len", "100000"], extra: ["--threads", "1"]
        ) { chill, _ in
            let warm = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat())
            #expect(warm.status == 200)

            // ~5 MB of SSE to a client with a 4 KB receive window that reads 4 KB at a time.
            let body = E2E.chat(stream: true, maxTokens: 30000)
            let port = chill.port
            let received = try await E2EHTTP.onThread {
                let slow = try E2EHTTP.Connection.open(port: port, timeout: 30, receiveBuffer: 4096)
                defer { slow.close() }
                try slow.send("POST", "/v1/chat/completions", body: body)
                var total = 0
                while true {
                    let n = try slow.drainSome(4096)
                    if n == 0 { break }
                    total += n
                    usleep(50)
                }
                return total
            }
            #expect(received > 3_000_000, "the whole stream arrived: \(received) bytes")

            for i in 0..<20 {
                let r = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat(), timeout: 10)
                #expect(r.status == 200, "request \(i) after the slow stream: \(r)")
            }
            try await chill.waitForNothingInFlight()
        }
    }
}
