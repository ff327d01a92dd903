#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import Shared
import Synchronization

/// A model served by a local process (`vllm serve …` on this machine): `scale(to: 1)` starts
/// `/bin/sh -c <command>` in its own process group with stdout and stderr appended to `logFile`;
/// `scale(to: 0)` sends SIGTERM to the group and SIGKILL after `stopGrace`. `run()` probes `/health`
/// and, when cancelled, stops the process and waits for it: nothing outlives chill-server.
final class ProcessBackend: Backend {
    let name = "process"
    let target: UpstreamTarget
    let command: String
    let logFile: String
    let stopGrace: Duration

    private let probe: HealthProbe
    private let policy: HealthProbePolicy
    private let logger: Logger
    private let broadcaster = StatusBroadcaster()
    private let probeSignal = LoopSignal()
    private let state = Mutex(State())

    /// How many lines of the log a `ProcessExited` failure quotes.
    static let logTailLines = 15

    /// - Parameters:
    ///   - command: run by `/bin/sh -c`, e.g. `vllm serve Qwen/Qwen2.5-0.5B-Instruct --port 8000`.
    ///   - target: where the process serves; `/health` is probed there.
    ///   - logFile: stdout and stderr are appended here (created if missing).
    ///   - stopGrace: SIGTERM → SIGKILL delay.
    ///   - probePolicy: probe intervals (≤ 250 ms while starting, a few seconds once ready).
    ///   - probeTimeout: one `/health` request's limit.
    init(command: String, target: UpstreamTarget, logFile: String, stopGrace: Duration = .seconds(30),
         probePolicy: HealthProbePolicy = HealthProbePolicy(), probeTimeout: Duration = .seconds(1),
         logger: Logger = Logger(label: "chill.backend.process")) {
        self.command = command
        self.target = target
        self.logFile = logFile
        self.stopGrace = stopGrace
        self.probe = HealthProbe(target: target, timeout: probeTimeout)
        self.policy = probePolicy
        self.logger = logger
    }

    /// The latest status (also the first element of every `statusUpdates()` stream).
    var currentStatus: BackendStatus { broadcaster.current }

    /// The running child's pid (= its process group id), nil when none runs.
    var processID: Int32? { state.withLock { $0.child?.pid } }

    func statusUpdates() -> AsyncStream<BackendStatus> { broadcaster.subscribe() }

    func scale(to replicas: Int) async throws {
        try update { s in
            guard !s.shutDown else { throw CancellationError() }
            if replicas > 0 {
                s.desired = 1
                s.failure = nil
                guard let child = s.child else {
                    try start(&s)
                    return
                }
                // Asked back while stopping (or while a crashed one's group winds down): start again
                // once the old one is gone.
                if child.stopping || child.leaderExited { s.restartAfterExit = true }
            } else {
                s.desired = 0
                s.failure = nil
                s.restartAfterExit = false
                stop(&s)
            }
        }
    }

    func run() async throws {
        await probeLoop()
        // Cancelled: stop the child and wait until it is reaped. In a fresh task, so the cancellation
        // doesn't cut the wait short.
        await Task { await self.shutDown() }.value
        broadcaster.finish()
    }

    // MARK: - State

    private struct Child {
        var pid: pid_t
        /// SIGTERM sent (we asked it to stop): its exit is not a failure.
        var stopping = false
        /// The leader was reaped; the rest of its group may still be running.
        var leaderExited = false
        /// The log's size when it started: the failure message quotes only this run's lines.
        var logOffset: Int
    }

    private struct State {
        var desired = 0
        var child: Child?
        var health = HealthTracker()
        var failure: BackendFailure?
        var restartAfterExit = false
        var shutDown = false
        var exitWaiters: [CheckedContinuation<Void, Never>] = []

        var status: BackendStatus {
            var status = BackendStatus()
            status.desiredReplicas = desired
            status.failure = failure
            guard let child else {
                if desired > 0 && failure == nil { status.progress = WakeStep.starting.label }
                return status
            }
            let ready = !child.stopping && !child.leaderExited && health.healthy
            status.readyReplicas = ready ? 1 : 0
            // A stopping process still exists (and holds its GPU): zero replicas means gone.
            status.pendingReplicas = ready ? 0 : 1
            if child.stopping || child.leaderExited {
                status.progress = desired > 0 ? (failure == nil ? WakeStep.starting.label : nil) : "Stopping"
            } else if desired > 0 {
                status.progress = (ready ? WakeStep.ready : WakeStep.loadingModel).label
            }
            return status
        }
    }

    /// Mutates the state and publishes the new status (under the lock, so changes arrive in order).
    private func update<T>(wakeProbe: Bool = true, _ body: (inout State) throws -> T) rethrows -> T {
        var change: (old: BackendStatus, new: BackendStatus)?
        defer {
            if wakeProbe { probeSignal.signal() }
            if let (old, new) = change {
                if let failure = new.failure, failure != old.failure {
                    logger.error("backend failed: \(failure)")
                } else {
                    logger.info("backend status changed", metadata: [
                        "desired": "\(new.desiredReplicas)", "ready": "\(new.readyReplicas)",
                        "pending": "\(new.pendingReplicas)", "progress": "\(new.progress ?? "-")",
                    ])
                }
            }
        }
        return try state.withLock { s in
            // Published even when `body` throws: what it changed before (a failure) must be seen.
            defer {
                let status = s.status
                change = broadcaster.publish(status).map { ($0, status) }
            }
            return try body(&s)
        }
    }

    // MARK: - Start, stop, reap

    private func start(_ s: inout State) throws {
        do {
            let (pid, offset) = try ChildProcess.spawn(command: command, logFile: logFile)
            s.child = Child(pid: pid, logOffset: offset)
            s.health.reset()
            logger.info("started process \(pid): \(command)")
            BlockingThread.spawn { [self] in
                let status = ChildProcess.waitForExit(pid)
                self.reaped(pid, status: status)
            }
        } catch let failure as BackendFailure {
            s.failure = failure
            throw failure
        }
    }

    /// SIGTERM to the group now, SIGKILL after the grace period if anything of it is left.
    private func stop(_ s: inout State) {
        guard var child = s.child, !child.stopping else { return }
        child.stopping = true
        s.child = child
        let pid = child.pid
        logger.info("stopping process \(pid) (SIGTERM, SIGKILL after \(stopGrace))")
        kill(-pid, SIGTERM)
        let grace = stopGrace
        let logger = self.logger
        Task.detached {
            try? await Task.sleep(for: grace)
            // The group outlives its leader when a child ignored SIGTERM: kill what's left.
            if kill(-pid, 0) == 0 {
                logger.warning("process group \(pid) still running \(grace) after SIGTERM: SIGKILL")
                kill(-pid, SIGKILL)
            }
        }
    }

    /// Called on the reaper thread once `waitpid` returned for the group's leader. The backend counts as
    /// stopped only when the whole process group is gone: with `sh -c`, the leader is the shell and the
    /// server its child, which may still be finishing a graceful shutdown (and holding its GPU).
    private func reaped(_ pid: pid_t, status: Int32) {
        let exit = ChildProcess.describe(status)
        let offset = state.withLock { s in s.child?.pid == pid ? s.child?.logOffset : nil } ?? 0
        let tail = ChildProcess.tail(of: logFile, from: offset, lines: Self.logTailLines)
        ChildProcess.appendLine(to: logFile, "[chill-server] process \(pid) \(exit)")
        logger.info("process \(pid) \(exit)")
        // The leader is gone: not ready any more, and a failure unless we asked it to stop.
        let stopping: Bool = update { s in
            guard var child = s.child, child.pid == pid else { return true }
            child.leaderExited = true
            s.child = child
            s.health.reset()
            if s.desired > 0 && !child.stopping {
                let lines = tail.isEmpty ? "" : "; last lines of \(logFile):\n" + tail
                s.failure = BackendFailure(reason: "ProcessExited", message: "\(exit)\(lines)")
            }
            return child.stopping
        }
        // The rest of its group. Stopping: SIGTERM went to all of them and `stop`'s timer SIGKILLs what is
        // left after the grace. A crashed leader's leftovers (engine workers holding the GPU) are stopped
        // the same way.
        if ChildProcess.groupExists(pid) {
            if !stopping { kill(-pid, SIGTERM) }
            let grace = stopping ? stopGrace + .seconds(5) : stopGrace
            if !ChildProcess.waitForGroupToVanish(pid, within: grace) {
                logger.warning("process group \(pid) still running after \(grace): SIGKILL")
                kill(-pid, SIGKILL)
                _ = ChildProcess.waitForGroupToVanish(pid, within: .seconds(5))
            }
        }
        let waiters: [CheckedContinuation<Void, Never>] = update { s in
            guard let child = s.child, child.pid == pid else { return [] }
            s.child = nil
            s.health.reset()
            if s.desired > 0 && s.restartAfterExit && !s.shutDown {
                s.restartAfterExit = false
                try? start(&s)
            }
            let waiters = s.child == nil ? s.exitWaiters : []
            if s.child == nil { s.exitWaiters = [] }
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    private func shutDown() async {
        update { s in
            s.shutDown = true
            s.desired = 0
            s.restartAfterExit = false
            stop(&s)
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done: Bool = state.withLock { s in
                guard s.child != nil else { return true }
                s.exitWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    // MARK: - Health

    private func probeLoop() async {
        while !Task.isCancelled {
            let active = state.withLock { s in s.child.map { !$0.stopping && !$0.leaderExited } ?? false }
            guard active else {
                await probeSignal.wait(timeout: nil)
                continue
            }
            let result = await probe.check()
            if Task.isCancelled { return }
            var interval = policy.wakingInterval
            var changed: Bool?
            update(wakeProbe: false) { s in
                guard let child = s.child, !child.stopping, !child.leaderExited else { return }
                if s.health.record(result, threshold: policy.failureThreshold) { changed = s.health.healthy }
                interval = s.health.nextInterval(policy)
            }
            if let changed { logger.info("health \(changed ? "confirmed" : "lost") on \(target): \(result)") }
            await probeSignal.wait(timeout: interval)
        }
    }
}

/// posix_spawn, waitpid and log-file helpers for `ProcessBackend`.
enum ChildProcess {
    /// Starts `/bin/sh -c command` as the leader of a new process group, stdin from /dev/null, stdout and
    /// stderr appended to `logFile`, signal mask and dispositions reset (chill-server blocks or handles
    /// SIGTERM/SIGINT for its own shutdown; the child must not inherit that). Returns the pid and the
    /// log's size before the start.
    static func spawn(command: String, logFile: String) throws -> (pid: pid_t, logOffset: Int) {
        let fd = open(logFile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw BackendFailure(reason: "SpawnFailed", message: "cannot open log file \(logFile): \(errorText(errno))")
        }
        defer { close(fd) }
        let offset = Int(lseek(fd, 0, SEEK_END))
        writeAll(fd, "[chill-server] starting: \(command)\n")

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fd, 1)
        posix_spawn_file_actions_adddup2(&actions, fd, 2)
        // Nothing else of ours (sockets, the kubeconfig…) leaks into the server.
        addCloseFrom(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setpgroup(&attributes, 0)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGPIPE, SIGUSR1, SIGUSR2, SIGCHLD, SIGALRM, SIGTSTP, SIGTTIN, SIGTTOU] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let arguments: [String] = ["/bin/sh", "-c", command]
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        var rc: Int32 = 0
        for attempt in 0..<20 {
            rc = posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, environ)
            guard rc == ETXTBSY else { break }
            usleep(useconds_t(5_000 * (attempt + 1)))
        }
        guard rc == 0 else {
            throw BackendFailure(reason: "SpawnFailed", message: "cannot start /bin/sh -c \(command): \(errorText(rc))")
        }
        return (pid, offset)
    }

    /// glibc ≥ 2.34's `posix_spawn_file_actions_addclosefrom_np`, looked up at run time (the Swift
    /// Glibc module doesn't expose it); without it only our O_CLOEXEC descriptors stay behind.
    private static func addCloseFrom(_ actions: inout posix_spawn_file_actions_t, _ lowest: Int32) {
        #if canImport(Glibc)
        typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return }
        let addCloseFrom = unsafeBitCast(symbol, to: AddCloseFrom.self)
        _ = addCloseFrom(&actions, lowest)
        #endif
    }

    /// Blocks until `pid` exits; returns its wait status.
    static func waitForExit(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return -1 }
        }
        return status
    }

    /// A live (not zombie) process of group `pgid` still exists. Orphans of the group are reparented to
    /// init, which may take a while to reap them; a zombie holds nothing, so it doesn't count.
    static func groupExists(_ pgid: pid_t) -> Bool {
        guard kill(-pgid, 0) == 0 || errno == EPERM else { return false }
        #if os(Linux)
        guard let dir = opendir("/proc") else { return true }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let first = name.utf8.first, first >= 0x30 && first <= 0x39 else { continue }
            guard let stat = readSmallFile("/proc/\(name)/stat"), let close = stat.lastIndex(of: ")") else { continue }
            // "pid (comm) state ppid pgrp ..."
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 3, Int32(fields[2]) == pgid else { continue }
            if fields[0] != "Z" && fields[0] != "X" { return true }
        }
        return false
        #else
        return true
        #endif
    }

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }

    /// Polls (on the calling, dedicated thread) until group `pgid` is gone; false at the deadline.
    static func waitForGroupToVanish(_ pgid: pid_t, within limit: Duration) -> Bool {
        let deadline = ContinuousClock.now + limit
        while groupExists(pgid) {
            guard ContinuousClock.now < deadline else { return false }
            usleep(20_000)
        }
        return true
    }

    /// "exited with code 3", "killed by signal 9 (SIGKILL)".
    static func describe(_ status: Int32) -> String {
        if status == -1 { return "exited (status unknown)" }
        let signal = status & 0x7f
        if signal == 0 { return "exited with code \((status >> 8) & 0xff)" }
        let names: [Int32: String] = [SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGABRT: "SIGABRT",
                                      SIGKILL: "SIGKILL", SIGSEGV: "SIGSEGV", SIGPIPE: "SIGPIPE", SIGTERM: "SIGTERM", SIGBUS: "SIGBUS"]
        return "killed by signal \(signal)" + (names[signal].map { " (\($0))" } ?? "")
    }

    /// The last `lines` lines of `path` written at or after `offset` (at most the last 8 KiB).
    static func tail(of path: String, from offset: Int, lines: Int) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        let size = Int(lseek(fd, 0, SEEK_END))
        let start = max(offset, size - 8192)
        guard size > start else { return "" }
        var buffer = [UInt8](repeating: 0, count: size - start)
        var read = 0
        while read < buffer.count {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + read, $0.count - read, off_t(start + read)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            read += n
        }
        var text = Substring(String(decoding: buffer[0..<read], as: UTF8.self))
        // Our own "[chill-server] starting" line says nothing the failure doesn't.
        var all = text.split(separator: "\n", omittingEmptySubsequences: true)
        if start == offset, all.first?.hasPrefix("[chill-server] starting") == true { all.removeFirst() }
        text = all.suffix(lines).joined(separator: "\n")[...]
        return String(text)
    }

    static func appendLine(to path: String, _ line: String) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        defer { close(fd) }
        writeAll(fd, line + "\n")
    }

    static func writeAll(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            written += n
        }
    }

    static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }
}
