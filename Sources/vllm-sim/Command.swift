// vllm-sim: a simulator of vLLM's observable behaviour (see docs/VLLM-SIM.md).

import ArgumentParser
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Everything the server needs from the command line, as a value that crosses threads.
struct SimConfig: Sendable {
    var host: String
    var port: Int
    var servedModelName: String
    var startupSeconds: Double
    var tokensPerSecond: Double
    var maxNumSeqs: Int
    var maxModelLen: Int
    var maxTokensDefault: Int
    var outputTokens: Int?
    var firstTokenDelay: Double
    var crashDuringStartup: Bool
    var crashMidStream: Int?
    var failMidStream: Int?
    var enableSleepMode: Bool
    var sleepSeconds: Double
    var wakeSeconds: Double
    var quiet: Bool
    var exitOnStdinClose: Bool
    var threads: Int
    /// Put the send instant (`"sim_sent_ns"`, CLOCK_MONOTONIC) into every streamed JSON event.
    var chunkTimestamps = false
    /// Append JSON lines with the instants the simulator started listening, first answered
    /// `/health` 200 and first received another request (CLOCK_MONOTONIC ns).
    var timingLog: String?

    /// Seconds between two tokens; 0 means as fast as possible.
    var tokenInterval: Double { tokensPerSecond > 0 ? 1 / tokensPerSecond : 0 }
}

@main
struct VLLMSimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vllm-sim",
        abstract: "Simulates vLLM's OpenAI-compatible server: startup delay, token pacing, queueing, metrics, sleep mode and faults, without a model.",
        discussion: "See docs/VLLM-SIM.md for the endpoints and what is (not) simulated."
    )

    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free port (printed in the startup line).")
    var port: Int = 8000

    @Option(name: .customLong("served-model-name"), help: "Model name the API accepts and reports.")
    var servedModelName: String = "sim-model"

    @Option(
        name: .customLong("startup-seconds"),
        help: "Simulated model loading time; the port refuses connections until it is over.")
    var startupSeconds: Double = 0

    @Option(
        name: .customLong("tokens-per-second"),
        help: "Generation speed per request; 0 generates as fast as possible.")
    var tokensPerSecond: Double = 200

    @Option(
        name: .customLong("max-num-seqs"),
        help: "Requests generated at once; more wait in a queue (vllm:num_requests_waiting).")
    var maxNumSeqs: Int = 256

    @Option(name: .customLong("max-model-len"), help: "Context length reported by /v1/models.")
    var maxModelLen: Int = 4096

    @Option(
        name: .customLong("max-tokens-default"),
        help: "Tokens generated when a request sets neither max_tokens nor max_completion_tokens.")
    var maxTokensDefault: Int = 16

    @Option(
        name: .customLong("output-tokens"),
        help: "Natural length of every answer: a request allowing more tokens stops here with finish_reason \"stop\". Default: answers only end at max_tokens (\"length\").")
    var outputTokens: Int?

    @Option(
        name: .customLong("first-token-delay"),
        help: "Seconds before the first token (prefill); default: one token interval.")
    var firstTokenDelay: Double = 0

    @Flag(
        name: .customLong("crash-during-startup"),
        help: "Exit with status 1 after --startup-seconds without ever listening.")
    var crashDuringStartup = false

    @Option(
        name: .customLong("crash-mid-stream"),
        help: "The process exits with status 1 right after sending N tokens of a request.")
    var crashMidStream: Int?

    @Option(
        name: .customLong("fail-mid-stream"),
        help: "After N tokens of a request the engine dies but the process stays: the stream is cut, /health answers 503 and completions answer 500.")
    var failMidStream: Int?

    @Flag(
        name: .customLong("enable-sleep-mode"),
        help: "Serve POST /sleep, POST /wake_up and GET /is_sleeping.")
    var enableSleepMode = false

    @Option(name: .customLong("sleep-seconds"), help: "Time POST /sleep takes.")
    var sleepSeconds: Double = 0

    @Option(name: .customLong("wake-seconds"), help: "Time POST /wake_up takes.")
    var wakeSeconds: Double = 0

    @Flag(help: "Don't log each request.")
    var quiet = false

    @Flag(
        name: .customLong("exit-on-stdin-close"),
        help: "Exit when standard input reaches end of file (lets a parent test process take the simulator down with it).")
    var exitOnStdinClose = false

    @Option(help: "Event loop threads; default: the number of cores.")
    var threads: Int?

    @Flag(
        name: .customLong("chunk-timestamps"),
        help: "Add \"sim_sent_ns\" (CLOCK_MONOTONIC nanoseconds, read just before the write) to every streamed JSON event (benchmarks: per-chunk forwarding delay).")
    var chunkTimestamps = false

    @Option(
        name: .customLong("timing-log"),
        help: "Append JSON lines to FILE with the CLOCK_MONOTONIC nanoseconds at which the simulator started listening, first answered /health with 200 and first received any other request (benchmarks: wake detection).")
    var timingLog: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard startupSeconds >= 0, startupSeconds.isFinite else {
            throw ValidationError("--startup-seconds must be >= 0")
        }
        guard tokensPerSecond >= 0, tokensPerSecond.isFinite else {
            throw ValidationError("--tokens-per-second must be >= 0")
        }
        guard maxNumSeqs >= 1 else { throw ValidationError("--max-num-seqs must be >= 1") }
        guard maxModelLen >= 1 else { throw ValidationError("--max-model-len must be >= 1") }
        guard maxTokensDefault >= 1 else { throw ValidationError("--max-tokens-default must be >= 1") }
        if let n = outputTokens, n < 1 { throw ValidationError("--output-tokens must be >= 1") }
        guard firstTokenDelay >= 0, firstTokenDelay.isFinite else {
            throw ValidationError("--first-token-delay must be >= 0")
        }
        if let n = crashMidStream, n < 0 { throw ValidationError("--crash-mid-stream must be >= 0") }
        if let n = failMidStream, n < 0 { throw ValidationError("--fail-mid-stream must be >= 0") }
        guard sleepSeconds >= 0, wakeSeconds >= 0, sleepSeconds.isFinite, wakeSeconds.isFinite else {
            throw ValidationError("--sleep-seconds and --wake-seconds must be >= 0")
        }
        if let t = threads, t < 1 { throw ValidationError("--threads must be >= 1") }
        if let path = timingLog, path.isEmpty { throw ValidationError("--timing-log needs a file name") }
    }

    var config: SimConfig {
        SimConfig(
            host: host, port: port, servedModelName: servedModelName, startupSeconds: startupSeconds,
            tokensPerSecond: tokensPerSecond, maxNumSeqs: maxNumSeqs, maxModelLen: maxModelLen,
            maxTokensDefault: maxTokensDefault, outputTokens: outputTokens,
            firstTokenDelay: firstTokenDelay, crashDuringStartup: crashDuringStartup,
            crashMidStream: crashMidStream, failMidStream: failMidStream,
            enableSleepMode: enableSleepMode, sleepSeconds: sleepSeconds, wakeSeconds: wakeSeconds,
            quiet: quiet, exitOnStdinClose: exitOnStdinClose,
            threads: threads ?? System.coreCount, chunkTimestamps: chunkTimestamps, timingLog: timingLog)
    }

    func run() async throws {
        try await SimServer(config: config).run()
    }
}
