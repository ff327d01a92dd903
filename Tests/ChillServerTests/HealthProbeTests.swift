import Foundation
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
        let port = stub.port
        await stub.stop()
        let refused = await HealthProbe(target: UpstreamTarget(host: "127.0.0.1", port: port), timeout: .seconds(5)).check()
        #expect(refused == .unreachable("cannot reach http://127.0.0.1:\(port): connection refused"))
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
