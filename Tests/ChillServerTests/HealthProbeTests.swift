import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import ChillServer

/// `/health` probes over NIO: status codes, refused connections, and no thread per probe.
@Suite struct HealthProbeTests {
    @Test func probesReportHealthyUnhealthyAndUnreachable() async throws {
        let stub = try await HealthStub.start(status: 200)
        let probe = HealthProbe(target: UpstreamTarget(host: "127.0.0.1", port: stub.port), timeout: .seconds(5))
        #expect(await probe.check() == .healthy)
        stub.set(503)
        #expect(await probe.check() == .unhealthy(status: 503))
        #expect(stub.requests == 2)
        await stub.stop()
        // A port held bound but not listening: nobody else can take it, and a connect is refused.
        let (socket, port) = Self.boundButNotListening()
        defer { close(socket) }
        let refused = await HealthProbe(target: UpstreamTarget(host: "127.0.0.1", port: port), timeout: .seconds(5)).check()
        #expect(refused == .unreachable("cannot reach http://127.0.0.1:\(port): connection refused"))
    }

    static func boundButNotListening() -> (Int32, Int) {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 ? getsockname(fd, $0, &length) : -1 }
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    @Test func aBackendThatNeverAnswersTimesOut() async throws {
        // Accepts connections and reads requests, but never writes a byte.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let channel = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        let result = await HealthProbe(target: UpstreamTarget(host: "127.0.0.1", port: port), timeout: .milliseconds(200)).check()
        try? await channel.close()
        try? await group.shutdownGracefully()
        #expect(result == .unreachable("cannot reach http://127.0.0.1:\(port): timed out"))
    }

    @Test func manyConcurrentProbesNeedNoThreadEach() async throws {
        let stub = try await HealthStub.start(status: 200)
        defer { Task { await stub.stop() } }
        let probe = HealthProbe(target: UpstreamTarget(host: "127.0.0.1", port: stub.port), timeout: .seconds(10))
        #expect(await probe.check() == .healthy)
        let before = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count
        let results = await withTaskGroup(of: HealthProbeResult.self) { group in
            for _ in 0..<50 { group.addTask { await probe.check() } }
            return await group.reduce(into: [HealthProbeResult]()) { $0.append($1) }
        }
        let after = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count
        print("threads: \(before) before, \(after) after 50 concurrent health probes")
        #expect(results.allSatisfy { $0.isHealthy })
        #expect(after - before < 20)
    }
}
