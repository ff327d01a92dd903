// Instants for benchmarks: the clock behind --chunk-timestamps and --timing-log.

import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// CLOCK_MONOTONIC in nanoseconds: the clock Python's `time.monotonic_ns()` reads on Linux, so a
/// client on the same machine can subtract an instant written by the simulator from its own.
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// `--timing-log FILE`: one JSON line per first occurrence, appended (O_APPEND, one write each):
///
///     {"event":"listening","ns":…,"pid":…}
///     {"event":"health_200","ns":…,"pid":…}
///     {"event":"request","ns":…,"pid":…,"method":"POST","path":"/v1/chat/completions"}
///
/// `listening`: the socket is bound (before that, connections are refused); `health_200`: the first
/// `GET /health` answered 200; `request`: the head of the first request for any other path was read.
final class TimingLog: Sendable {
    private let fd: Int32
    private let pid = getpid()
    private let healthSeen = Atomic<Bool>(false)
    private let requestSeen = Atomic<Bool>(false)

    /// Opens (creates) `path` for appending; nil with errno set when it cannot.
    init?(path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return nil }
        self.fd = fd
    }

    deinit { close(fd) }

    func listening() {
        append(event: "listening", ns: monotonicNanoseconds())
    }

    /// Called for every `/health` answered 200; only the first is written.
    func healthAnswered() {
        let ns = monotonicNanoseconds()
        guard healthSeen.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        append(event: "health_200", ns: ns)
    }

    /// Called for every request head read, `/health` included; the first other one is written.
    func requestArrived(method: String, path: Substring) {
        guard path != "/health" else { return }
        let ns = monotonicNanoseconds()
        guard requestSeen.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        var extra = ",\"method\":"
        appendJSONString(method, to: &extra)
        extra += ",\"path\":"
        appendJSONString(String(path), to: &extra)
        append(event: "request", ns: ns, extra: extra)
    }

    private func append(event: String, ns: UInt64, extra: String = "") {
        var line = "{\"event\":\"\(event)\",\"ns\":\(ns),\"pid\":\(pid)\(extra)}\n"
        line.withUTF8 { buf in
            var offset = 0
            while offset < buf.count {
                let n = write(fd, buf.baseAddress! + offset, buf.count - offset)
                if n <= 0 {
                    if n < 0 && errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}
