import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Startup (loading delay, faults), the listening socket and process-level concerns (signals,
/// stdin watching).
struct SimServer {
    let config: SimConfig

    func run() async throws {
        installSignalHandlers()
        if config.exitOnStdinClose { watchStdin() }

        let config = self.config
        var timingLog: TimingLog?
        if let path = config.timingLog {
            guard let log = TimingLog(path: path) else {
                logLine("vllm-sim: cannot open --timing-log \(path): \(String(cString: strerror(errno)))")
                exit(2)
            }
            timingLog = log
        }
        logLine(
            "vllm-sim: loading model \(config.servedModelName) "
                + "(startup \(config.startupSeconds)s, pid \(getpid()))")
        if config.startupSeconds > 0 {
            try await Task.sleep(for: .milliseconds(Int64((config.startupSeconds * 1000).rounded())))
        }
        if config.crashDuringStartup {
            logLine("vllm-sim: simulated crash during startup")
            exit(1)
        }

        let engine = Engine(config: config, timingLog: timingLog)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: config.threads)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withPipeliningAssistance: true, withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(HTTPHandler(engine: engine))
                }
            }

        let channel: Channel
        do {
            channel = try await bootstrap.bind(host: config.host, port: config.port).get()
        } catch {
            logLine("vllm-sim: cannot listen on \(config.host):\(config.port): \(error)")
            exit(2)
        }
        timingLog?.listening()
        let port = channel.localAddress?.port ?? config.port
        let hostForURL = config.host.contains(":") ? "[\(config.host)]" : config.host
        logLine("vllm-sim: serving \(config.servedModelName) on http://\(hostForURL):\(port)")
        try await channel.closeFuture.get()
    }

    private func installSignalHandlers() {
        // Exit at once with status 0: nothing to flush (logs are written unbuffered), and open
        // connections are closed by the kernel, which is what a stopped vLLM looks like.
        let handler: @convention(c) (Int32) -> Void = { _ in
            let msg: StaticString = "vllm-sim: received termination signal, exiting\n"
            _ = write(1, msg.utf8Start, msg.utf8CodeUnitCount)
            _exit(0)
        }
        signal(SIGTERM, handler)
        signal(SIGINT, handler)
        signal(SIGPIPE, SIG_IGN)
    }

    private func watchStdin() {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        pool.submit { _ in
            var buf = [UInt8](repeating: 0, count: 256)
            while true {
                let n = buf.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
                if n > 0 { continue }
                if n < 0 && errno == EINTR { continue }
                logLine("vllm-sim: standard input closed, exiting")
                _exit(0)
            }
        }
    }
}
