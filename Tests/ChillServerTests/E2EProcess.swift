import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The package's executables as `swift test` built them: `swift test` builds every product of the
/// package (its llbuild "test" target includes chill-server and vllm-sim), next to the test bundle.
/// Nothing here runs `swift build`: inside `swift test` the .build lock is held, so that would hang.
enum E2EBinaries {
    struct NotFound: Error, CustomStringConvertible {
        var name: String
        var tried: [String]
        var description: String {
            "\(name) not found (build it with `swift build --product \(name)`); tried: \(tried.joined(separator: ", "))"
        }
    }

    static func locate(_ name: String, environment variable: String, filePath: String = #filePath) throws -> String {
        var candidates: [String] = []
        if let path = ProcessInfo.processInfo.environment[variable], !path.isEmpty { candidates.append(path) }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        candidates.append(exe.deletingLastPathComponent().appendingPathComponent(name).path)
        candidates.append(Bundle.main.bundleURL.appendingPathComponent(name).path)
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent(name).path)
        let root = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug/\(name)").path)
        for path in candidates {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
               FileManager.default.isExecutableFile(atPath: path) {
                return path
            }
        }
        throw NotFound(name: name, tried: candidates)
    }
}

/// Runs a command to completion with a bound, in a session of its own (`setsid`), so a timeout can stop
/// it and everything it started: SIGTERM to the group, SIGKILL 5 s later. Output (stdout + stderr)
/// goes through a temporary file, never a pipe that could fill up.
enum E2EProcess {
    struct Result: Sendable {
        var status: Int32
        var output: String
        var timedOut: Bool
    }

    static func runBlocking(_ arguments: [String], cwd: URL, environment: [String: String]? = nil, timeout: Double) throws -> Result {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("chill-e2e-run-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let out = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["setsid"] + arguments
        process.currentDirectoryURL = cwd
        if let environment { process.environment = environment }
        process.standardOutput = out
        process.standardError = out
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? out.close()
        let pid = process.processIdentifier
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        while process.isRunning {
            if Date() > deadline {
                timedOut = true
                _ = kill(-pid, SIGTERM)
                let hard = Date().addingTimeInterval(5)
                while process.isRunning && Date() < hard { usleep(20_000) }
                _ = kill(-pid, SIGKILL)
                break
            }
            usleep(20_000)
        }
        process.waitUntilExit()
        var output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        if timedOut { output += "\n[timed out after \(timeout)s: stopped]" }
        return Result(status: timedOut ? -1 : process.terminationStatus, output: output, timedOut: timedOut)
    }

    static func run(_ arguments: [String], cwd: URL, environment: [String: String]? = nil, timeout: Double) async throws -> Result {
        try await E2EHTTP.onThread { try runBlocking(arguments, cwd: cwd, environment: environment, timeout: timeout) }
    }
}
