#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Runs a command to completion and captures its standard output; standard error passes through
/// (exec credential plugins print prompts and diagnostics there). POSIX spawn, so no full Foundation.
enum ProcessRunner {
    struct Result: Sendable {
        var status: Int32
        var stdout: [UInt8]
    }

    enum Failure: Error, Sendable { case notFound, spawnFailed(Int32), timedOut }

    /// With a `timeout`, a command still running then is killed (its whole process group, so a
    /// script's children do not keep the output pipe open) and the run fails with `.timedOut`.
    static func run(_ command: String, arguments: [String], environment: [String: String], inheritStdin: Bool,
                    timeout: Duration? = nil) async throws -> Result {
        let child = Child()
        let outcome: Swift.Result<Result, Failure> = await withTaskGroup(of: Swift.Result<Result, Failure>?.self) { group in
            group.addTask {
                await BlockingThread.run {
                    runBlocking(command, arguments: arguments, environment: environment, inheritStdin: inheritStdin, child: child)
                }
            }
            if let timeout {
                group.addTask {
                    do { try await Task.sleep(for: timeout) } catch { return nil }
                    child.terminate()
                    return nil
                }
            }
            var outcome: Swift.Result<Result, Failure> = .failure(.spawnFailed(0))
            for await result in group {
                guard let result else { continue }
                outcome = result
                group.cancelAll()
            }
            return outcome
        }
        if child.wasKilled { throw Failure.timedOut }
        return try outcome.get()
    }

    /// The running child's pid, so a timeout can kill it, and whether it did.
    final class Child: Sendable {
        private struct State { var pid: pid_t?; var ownGroup = false; var killed = false }
        private let state = Mutex(State())

        func started(_ pid: pid_t, ownGroup: Bool) { state.withLock { $0.pid = pid; $0.ownGroup = ownGroup } }
        /// Called before the child is reaped, so the pid cannot have been reused.
        func exited() { state.withLock { $0.pid = nil } }
        var wasKilled: Bool { state.withLock { $0.killed } }

        func terminate() {
            state.withLock { s in
                guard let pid = s.pid else { return }
                s.killed = true
                _ = kill(s.ownGroup ? -pid : pid, SIGKILL)
            }
        }
    }

    private static func runBlocking(_ command: String, arguments: [String], environment: [String: String], inheritStdin: Bool,
                                    child: Child) -> Swift.Result<Result, Failure> {
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { return .failure(.spawnFailed(errno)) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
        posix_spawn_file_actions_addclose(&actions, pipeFDs[1])
        if !inheritStdin { posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) }
        // Its own process group, to be killed whole on timeout; not when interactive, where the
        // terminal's foreground group must stay ours.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        if !inheritStdin {
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
            posix_spawnattr_setpgroup(&attributes, 0)
        }

        let argv: [UnsafeMutablePointer<CChar>?] = ([command] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }

        var pid = pid_t()
        var rc: Int32 = 0
        // ETXTBSY: another thread's fork still holds a just-written script open for writing; it clears
        // as soon as that child execs, so retry briefly (Go's os/exec does the same).
        for attempt in 0..<20 {
            rc = command.contains("/")
                ? posix_spawn(&pid, command, &actions, &attributes, argv, envp)
                : spawnSearchingPath(&pid, command, &actions, &attributes, argv, envp, path: environment["PATH"])
            guard rc == ETXTBSY else { break }
            usleep(useconds_t(5_000 * (attempt + 1)))
        }
        close(pipeFDs[1])
        guard rc == 0 else {
            close(pipeFDs[0])
            return .failure(rc == ENOENT || rc == EACCES ? .notFound : .spawnFailed(rc))
        }
        child.started(pid, ownGroup: !inheritStdin)
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(pipeFDs[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            output.append(contentsOf: buffer[0..<n])
        }
        close(pipeFDs[0])
        var status: Int32 = 0
        // Wait without reaping first, so a concurrent kill never hits a reused pid.
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
        child.exited()
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return .success(Result(status: exitCode, stdout: output))
    }

    /// posix_spawnp searches the parent's PATH; the plugin's environment may carry its own.
    private static func spawnSearchingPath(
        _ pid: inout pid_t, _ command: String, _ actions: inout posix_spawn_file_actions_t, _ attributes: inout posix_spawnattr_t,
        _ argv: [UnsafeMutablePointer<CChar>?], _ envp: [UnsafeMutablePointer<CChar>?], path: String?
    ) -> Int32 {
        let directories = (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
        for directory in directories {
            let candidate = "\(directory)/\(command)"
            if access(candidate, X_OK) == 0 { return posix_spawn(&pid, candidate, &actions, &attributes, argv, envp) }
        }
        return ENOENT
    }
}
