#if canImport(Glibc)
import Glibc
#endif

/// The standard `process_*` metrics, read from /proc at scrape time.
struct ProcessMetrics: Sendable {
    private let startTime: Double

    init() {
        startTime = Self.unixTime()
    }

    /// Seconds since the epoch (for `created` fields and the start time), without Foundation.
    static func unixTime() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec)
    }

    func render() -> [UInt8] {
        var lines: [String] = []
        var usage = rusage()
        if getrusage(RUSAGE_SELF.rawValue, &usage) == 0 {
            let cpu = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
                + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
            lines += ["# TYPE process_cpu_seconds_total counter", "process_cpu_seconds_total \(cpu)"]
        }
        if let statm = readFile("/proc/self/statm")?.split(separator: " "), statm.count > 1, let pages = Double(statm[1]) {
            let rss = pages * Double(sysconf(Int32(_SC_PAGESIZE)))
            lines += ["# TYPE process_resident_memory_bytes gauge", "process_resident_memory_bytes \(rss)"]
        }
        var fds = 0
        if let dir = opendir("/proc/self/fd") {
            while readdir(dir) != nil { fds += 1 }
            closedir(dir)
            lines += ["# TYPE process_open_fds gauge", "process_open_fds \(max(0, fds - 3))"]
        }
        lines += ["# TYPE process_start_time_seconds gauge", "process_start_time_seconds \(startTime)"]
        return Array((lines.joined(separator: "\n") + "\n").utf8)
    }

    private func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 256)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
        return String(cString: buffer)
    }
}
