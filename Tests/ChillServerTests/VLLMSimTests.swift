import Foundation
import Testing

/// Tests of the `vllm-sim` binary (built by `swift test`, or `swift build --product vllm-sim`),
/// driven over real sockets through `VLLMSim` and `SimHTTP`.
@Suite("vllm-sim", .serialized)
struct VLLMSimTests {
    static let chatBody = #"{"model":"sim-model","messages":[{"role":"user","content":"Say hi"}]"#

    func chat(maxTokens: Int, stream: Bool = false, extra: String = "") -> String {
        #"{"model":"sim-model","messages":[{"role":"user","content":"Say hi"}],"max_tokens":\#(maxTokens),"stream":\#(stream)\#(extra)}"#
    }

    /// The value of the first sample of `name` whose labels contain all of `labels`.
    func metric(_ text: String, _ name: String, _ labels: [String] = []) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + "{") || line.hasPrefix(name + " ") {
            if labels.allSatisfy({ line.contains($0) }), let v = line.split(separator: " ").last {
                return Double(v)
            }
        }
        return nil
    }

    func metrics(_ sim: VLLMSim) async throws -> String {
        let r = try await SimHTTP.request(port: sim.port, "GET", "/metrics")
        #expect(r.status == 200)
        return r.text
    }

    /// Polls /metrics until `condition` holds (or fails after `timeout` seconds).
    func waitForMetrics(
        _ sim: VLLMSim, timeout: Double = 10, _ condition: (String) -> Bool
    ) async throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var text = ""
        while Date() < deadline {
            text = try await metrics(sim)
            if condition(text) { return text }
            try await Task.sleep(for: .milliseconds(25))
        }
        Issue.record("metrics condition not met within \(timeout)s; last:\n\(text)")
        return text
    }

    // MARK: startup

    @Test func refusesConnectionsWhileLoadingThenServes() async throws {
        let port = try VLLMSim.freePort()
        let sim = try VLLMSim.spawn(args: ["--port", String(port), "--startup-seconds", "3"])
        defer { sim.kill() }
        // Checked only while it still says it is loading, so a slow machine can't turn this into a
        // race with the end of the (3 s) startup.
        let refused = !SimHTTP.canConnect(port: port)
        let healthFailed: Bool
        do { _ = try await SimHTTP.request(port: port, "GET", "/health", timeout: 1); healthFailed = false } catch { healthFailed = true }
        if !sim.output.contains("serving") {
            #expect(sim.isRunning)
            #expect(refused, "the port must refuse connections while loading")
            #expect(healthFailed)
        }
        let served = try await sim.waitUntilServing(timeout: 30)
        #expect(served == port)
        #expect(sim.output.contains("vllm-sim: serving sim-model on http://127.0.0.1:\(port)"))
        let health = try await SimHTTP.request(port: port, "GET", "/health")
        #expect(health.status == 200)
        #expect(health.body.isEmpty)
    }

    @Test func crashDuringStartupExitsNonZeroWithoutListening() async throws {
        let sim = try VLLMSim.spawn(args: ["--startup-seconds", "0.2", "--crash-during-startup"])
        defer { sim.kill() }
        do {
            try await sim.waitUntilServing(timeout: 30)
            Issue.record("expected the simulator to exit before serving")
        } catch let error as VLLMSim.LaunchError {
            guard case .exitedBeforeServing(let status, _) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(status == 1)
        }
        #expect(!sim.output.contains("serving"))
    }

    @Test func sigtermExitsZero() async throws {
        let sim = try await VLLMSim.launch(args: ["--tokens-per-second", "10"])
        defer { sim.kill() }
        // A stream in progress must not hold up the exit.
        async let streaming = SimHTTP.request(
            port: sim.port, "POST", "/v1/chat/completions", body: chat(maxTokens: 100, stream: true))
        try await Task.sleep(for: .milliseconds(300))
        let started = Date()
        let status = await sim.terminate(timeout: 5)
        #expect(status == 0)
        #expect(Date().timeIntervalSince(started) < 3)
        let r = try? await streaming
        #expect(r?.complete != true)
    }

    @Test func exitsWhenTheParentGoesAway() async throws {
        let sim = try await VLLMSim.launch()
        defer { sim.kill() }
        sim.closeStandardInput()
        #expect(await sim.waitForExit(timeout: 10) == 0)
    }

    // MARK: API shapes

    @Test func modelsHealthAndNotFound() async throws {
        let sim = try await VLLMSim.launch(args: ["--served-model-name", "my-model", "--max-model-len", "8192"])
        defer { sim.kill() }
        let r = try await SimHTTP.request(port: sim.port, "GET", "/v1/models")
        #expect(r.status == 200)
        #expect(r.header("content-type") == "application/json")
        let json = try r.json()
        #expect(json["object"] as? String == "list")
        let data = try #require(json["data"] as? [[String: Any]])
        #expect(data.count == 1)
        #expect(data[0]["id"] as? String == "my-model")
        #expect(data[0]["object"] as? String == "model")
        #expect(data[0]["owned_by"] as? String == "vllm")
        #expect(data[0]["root"] as? String == "my-model")
        #expect(data[0]["max_model_len"] as? Int == 8192)
        #expect(data[0]["created"] is Int)

        let missing = try await SimHTTP.request(port: sim.port, "GET", "/nope")
        #expect(missing.status == 404)
        #expect(missing.text == #"{"detail":"Not Found"}"#)

        let wrongMethod = try await SimHTTP.request(port: sim.port, "GET", "/v1/chat/completions")
        #expect(wrongMethod.status == 405)

        // Sleep endpoints only exist with --enable-sleep-mode.
        let sleep = try await SimHTTP.request(port: sim.port, "POST", "/sleep")
        #expect(sleep.status == 404)
    }

    @Test func nonStreamingChatCompletion() async throws {
        let sim = try await VLLMSim.launch(args: ["--tokens-per-second", "0"])
        defer { sim.kill() }
        let r = try await SimHTTP.request(port: sim.port, "POST", "/v1/chat/completions", body: chat(maxTokens: 5))
        #expect(r.status == 200)
        let json = try r.json()
        #expect((json["id"] as? String)?.hasPrefix("chatcmpl-") == true)
        #expect(json["object"] as? String == "chat.completion")
        #expect(json["model"] as? String == "sim-model")
        #expect(json["created"] is Int)
        let choices = try #require(json["choices"] as? [[String: Any]])
        let message = try #require(choices.first?["message"] as? [String: Any])
        #expect(message["role"] as? String == "assistant")
        #expect(message["content"] as? String == "Hello ha ha! I")
        #expect(choices.first?["finish_reason"] as? String == "length")
        let usage = try #require(json["usage"] as? [String: Any])
        #expect(usage["completion_tokens"] as? Int == 5)
        let prompt = try #require(usage["prompt_tokens"] as? Int)
        #expect(usage["total_tokens"] as? Int == prompt + 5)

        // Without max_tokens: --max-tokens-default (16).
        let d = try await SimHTTP.request(port: sim.port, "POST", "/v1/chat/completions", body: Self.chatBody + "}")
        #expect(((try d.json())["usage"] as? [String: Any])?["completion_tokens"] as? Int == 16)
    }

    @Test func nonStreamingCompletionStopsAtOutputTokens() async throws {
        let sim = try await VLLMSim.launch(args: ["--output-tokens", "3", "--tokens-per-second", "1000"])
        defer { sim.kill() }
        let r = try await SimHTTP.request(
            port: sim.port, "POST", "/v1/completions", body: #"{"model":"sim-model","prompt":"a b c","max_tokens":10}"#)
        #expect(r.status == 200)
        let json = try r.json()
        #expect((json["id"] as? String)?.hasPrefix("cmpl-") == true)
        #expect(json["object"] as? String == "text_completion")
        let choice = try #require((json["choices"] as? [[String: Any]])?.first)
        #expect(choice["text"] as? String == "Hello ha ha")
        #expect(choice["finish_reason"] as? String == "stop")
        let usage = try #require(json["usage"] as? [String: Any])
        #expect(usage["prompt_tokens"] as? Int == 3)
        #expect(usage["completion_tokens"] as? Int == 3)
        let m = try await metrics(sim)
        #expect(metric(m, "vllm:request_success_total", [#"finished_reason="stop""#]) == 1)
    }

    @Test func errors() async throws {
        let sim = try await VLLMSim.launch()
        defer { sim.kill() }
        let wrong = try await SimHTTP.request(
            port: sim.port, "POST", "/v1/chat/completions",
            body: #"{"model":"other","messages":[{"role":"user","content":"x"}]}"#)
        #expect(wrong.status == 404)
        let error = try #require(try wrong.json()["error"] as? [String: Any])
        #expect(error["message"] as? String == "The model `other` does not exist.")
        #expect(error["type"] as? String == "NotFoundError")
        #expect(error["param"] as? String == "model")
        #expect(error["code"] as? Int == 404)

        let bad = try await SimHTTP.request(port: sim.port, "POST", "/v1/completions", body: #"{"prompt": "#)
        #expect(bad.status == 400)
        let badError = try #require(try bad.json()["error"] as? [String: Any])
        #expect(badError["type"] as? String == "BadRequestError")
        #expect(badError["code"] as? Int == 400)

        let noMessages = try await SimHTTP.request(
            port: sim.port, "POST", "/v1/chat/completions", body: #"{"model":"sim-model"}"#)
        #expect(noMessages.status == 400)

        let badMax = try await SimHTTP.request(
            port: sim.port, "POST", "/v1/chat/completions",
            body: #"{"messages":[{"role":"user","content":"x"}],"max_tokens":0}"#)
        #expect(badMax.status == 400)
    }

    // MARK: streaming

    @Test func streamingSendsEachEventAsItsOwnChunk() async throws {
        let sim = try await VLLMSim.launch(args: ["--tokens-per-second", "20"])
        defer { sim.kill() }
        let tokens = 6
        let r = try await SimHTTP.request(
            port: sim.port, "POST", "/v1/chat/completions",
            body: chat(maxTokens: tokens, stream: true, extra: #","stream_options":{"include_usage":true}"#))
        #expect(r.status == 200)
        #expect(r.header("content-type")?.hasPrefix("text/event-stream") == true)
        #expect(r.header("transfer-encoding") == "chunked")
        #expect(r.complete)
        // role + tokens + finish + usage + [DONE], each in its own chunk.
        let chunks = r.chunkTexts
        #expect(chunks.count == 1 + tokens + 3)
        for chunk in chunks {
            #expect(chunk.hasPrefix("data: ") && chunk.hasSuffix("\n\n"))
            #expect(chunk.components(separatedBy: "\n\n").count == 2, "one event per chunk: \(chunk)")
        }
        #expect(chunks.last == "data: [DONE]\n\n")
        let events = try chunks.dropLast().map { chunk in
            try #require(
                JSONSerialization.jsonObject(with: Data(chunk.dropFirst(6).utf8)) as? [String: Any])
        }
        for e in events {
            #expect(e["object"] as? String == "chat.completion.chunk")
            #expect((e["id"] as? String)?.hasPrefix("chatcmpl-") == true)
        }
        func delta(_ e: [String: Any]) -> [String: Any]? {
            ((e["choices"] as? [[String: Any]])?.first)?["delta"] as? [String: Any]
        }
        #expect(delta(events[0])?["role"] as? String == "assistant")
        let content = events[1...tokens].compactMap { delta($0)?["content"] as? String }
        #expect(content == ["Hello", " ha", " ha", "!", " I", " am"])
        // Two byte-identical events in a row (a proxy must forward both).
        #expect(chunks[2] == chunks[3])
        let finish = (events[tokens + 1]["choices"] as? [[String: Any]])?.first
        #expect(finish?["finish_reason"] as? String == "length")
        let usage = events[tokens + 2]
        #expect((usage["choices"] as? [Any])?.isEmpty == true)
        #expect((usage["usage"] as? [String: Any])?["completion_tokens"] as? Int == tokens)
        // Paced at 20 tokens/s: the token chunks arrive spread out, not in one burst.
        let spread = r.chunkTimes[tokens] - r.chunkTimes[1]
        #expect(spread >= Double(tokens - 1) * 0.05 * 0.7, "token chunks arrived within \(spread)s")
    }

    @Test func streamingCompletionAndFirstTokenDelay() async throws {
        let sim = try await VLLMSim.launch(args: ["--tokens-per-second", "0", "--first-token-delay", "0.5"])
        defer { sim.kill() }
        let r = try await SimHTTP.request(
            port: sim.port, "POST", "/v1/completions",
            body: #"{"prompt":"hello","max_tokens":3,"stream":true}"#)
        #expect(r.status == 200)
        let data = r.sseData
        #expect(data.count == 3 + 2)
        #expect(data.last == "[DONE]")
        #expect(data[0].contains(#""object":"text_completion""#) && data[0].contains(#""text":"Hello""#))
        #expect(r.chunkTimes[0] >= 0.4, "first token after the first-token delay")
    }

    @Test func clientDisconnectCancelsGeneration() async throws {
        let sim = try await VLLMSim.launch(args: ["--tokens-per-second", "20"])
        defer { sim.kill() }
        let r = try await SimHTTP.request(
            port: sim.port, "POST", "/v1/chat/completions", body: chat(maxTokens: 200, stream: true),
            stopAfterChunks: 3)
        #expect(r.chunks.count == 3)
        #expect(!r.complete)
        let m = try await waitForMetrics(sim) {
            metric($0, "vllm_sim:cancelled_requests_total") == 1 && metric($0, "vllm:num_requests_running") == 0
        }
        #expect(metric(m, "vllm:request_success_total", [#"finished_reason="length""#]) == 0)
        #expect(metric(m, "vllm:request_success_total", [#"finished_reason="abort""#]) == 1)
    }

    // MARK: scheduling

    @Test func maxNumSeqsQueuesRequests() async throws {
        let sim = try await VLLMSim.launch(args: ["--max-num-seqs", "1", "--tokens-per-second", "20"])
        defer { sim.kill() }
        let port = sim.port
        let body = chat(maxTokens: 40)  // about two seconds each
        async let first = SimHTTP.request(port: port, "POST", "/v1/chat/completions", body: body)
        _ = try await waitForMetrics(sim) { metric($0, "vllm:num_requests_running") == 1 }
        async let second = SimHTTP.request(port: port, "POST", "/v1/chat/completions", body: body)
        let busy = try await waitForMetrics(sim) { metric($0, "vllm:num_requests_waiting") == 1 }
        #expect(metric(busy, "vllm:num_requests_running") == 1)
        #expect(metric(busy, "vllm:kv_cache_usage_perc") == 1)
        let (a, b) = try await (first, second)
        #expect(a.status == 200 && b.status == 200)
        let idle = try await metrics(sim)
        #expect(metric(idle, "vllm:num_requests_running") == 0)
        #expect(metric(idle, "vllm:num_requests_waiting") == 0)
        #expect(metric(idle, "vllm:kv_cache_usage_perc") == 0)
        #expect(metric(idle, "vllm:request_success_total", [#"finished_reason="length""#]) == 2)
        #expect(metric(idle, "vllm:generation_tokens_total") == 80)
    }

    @Test func waitingRequestCancelledByDisconnect() async throws {
        let sim = try await VLLMSim.launch(args: ["--max-num-seqs", "1", "--tokens-per-second", "20"])
        defer { sim.kill() }
        let port = sim.port
        async let first = SimHTTP.request(port: port, "POST", "/v1/chat/completions", body: chat(maxTokens: 60))  // 3 s
        _ = try await waitForMetrics(sim) { metric($0, "vllm:num_requests_running") == 1 }
        // A streamed request gets its headers at once even while queued; leave after them.
        async let second = SimHTTP.request(
            port: port, "POST", "/v1/chat/completions", body: chat(maxTokens: 5, stream: true), timeout: 1)
        _ = try await waitForMetrics(sim) { metric($0, "vllm:num_requests_waiting") == 1 }
        _ = try? await second  // times out after 1s and closes the connection
        _ = try await waitForMetrics(sim) {
            metric($0, "vllm:num_requests_waiting") == 0 && metric($0, "vllm_sim:cancelled_requests_total") == 1
        }
        #expect(try await first.status == 200)
        let m = try await waitForMetrics(sim) { metric($0, "vllm:num_requests_running") == 0 }
        #expect(metric(m, "vllm:request_success_total", [#"finished_reason="length""#]) == 1)
    }

    @Test func manyConcurrentKeepAliveRequests() async throws {
        let sim = try await VLLMSim.launch(args: ["--tokens-per-second", "0", "--max-tokens-default", "1", "--quiet"])
        defer { sim.kill() }
        let port = sim.port
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<64 {
                group.addTask {
                    try await SimHTTP.request(
                        port: port, "POST", "/v1/chat/completions", body: Self.chatBody + "}"
                    ).status
                }
            }
            for try await status in group { #expect(status == 200) }
        }
        // HTTP/1.1 keep-alive: several requests on one connection (curl reuses it).
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let url = "http://127.0.0.1:\(port)/health"
        curl.arguments = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{num_connects}\n", url, url, url]
        let pipe = Pipe()
        curl.standardOutput = pipe
        try curl.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        curl.waitUntilExit()
        #expect(out == "200 1\n200 0\n200 0\n")
    }

    // MARK: faults

    @Test func crashMidStreamExitsAfterNTokens() async throws {
        let sim = try await VLLMSim.launch(args: ["--crash-mid-stream", "3", "--tokens-per-second", "50"])
        defer { sim.kill() }
        let r = try await SimHTTP.request(
            port: sim.port, "POST", "/v1/chat/completions", body: chat(maxTokens: 10, stream: true))
        #expect(r.status == 200)
        #expect(!r.complete)
        let tokens = r.sseData.filter { $0.contains(#""content":""#) && !$0.contains(#""role""#) }
        #expect(tokens.count == 3)
        #expect(!r.text.contains("[DONE]"))
        #expect(await sim.waitForExit(timeout: 10) == 1)
    }

    @Test func failMidStreamKillsTheEngineButNotTheProcess() async throws {
        let sim = try await VLLMSim.launch(args: ["--fail-mid-stream", "2", "--tokens-per-second", "50"])
        defer { sim.kill() }
        let r = try await SimHTTP.request(
            port: sim.port, "POST", "/v1/chat/completions", body: chat(maxTokens: 10, stream: true))
        #expect(!r.complete)
        #expect(!r.text.contains("[DONE]"))
        #expect(sim.isRunning)
        #expect(try await SimHTTP.request(port: sim.port, "GET", "/health").status == 503)
        let after = try await SimHTTP.request(port: sim.port, "POST", "/v1/chat/completions", body: chat(maxTokens: 2))
        #expect(after.status == 500)
        #expect((try after.json()["error"] as? [String: Any])?["code"] as? Int == 500)
    }

    // MARK: sleep mode

    @Test func sleepAndWakeUp() async throws {
        let sim = try await VLLMSim.launch(args: [
            "--enable-sleep-mode", "--sleep-seconds", "0.3", "--wake-seconds", "0.3", "--tokens-per-second", "0",
        ])
        defer { sim.kill() }
        let port = sim.port
        func isSleeping() async throws -> Bool? {
            try await SimHTTP.request(port: port, "GET", "/is_sleeping").json()["is_sleeping"] as? Bool
        }
        #expect(try await isSleeping() == false)

        var t = Date()
        #expect(try await SimHTTP.request(port: port, "POST", "/sleep?level=1").status == 200)
        #expect(Date().timeIntervalSince(t) >= 0.25)
        #expect(try await isSleeping() == true)
        var m = try await metrics(sim)
        #expect(metric(m, "vllm:engine_sleep_state", [#"sleep_state="awake""#]) == 0)
        #expect(metric(m, "vllm:engine_sleep_state", [#"sleep_state="weights_offloaded""#]) == 1)

        let asleep = try await SimHTTP.request(port: port, "POST", "/v1/chat/completions", body: chat(maxTokens: 2))
        #expect(asleep.status == 503)
        #expect((try asleep.json()["error"] as? [String: Any])?["code"] as? Int == 503)
        // Endpoints that need no weights keep working.
        #expect(try await SimHTTP.request(port: port, "GET", "/v1/models").status == 200)
        #expect(try await SimHTTP.request(port: port, "GET", "/health").status == 200)

        t = Date()
        #expect(try await SimHTTP.request(port: port, "POST", "/wake_up").status == 200)
        #expect(Date().timeIntervalSince(t) >= 0.25)
        #expect(try await isSleeping() == false)
        #expect(try await SimHTTP.request(port: port, "POST", "/v1/chat/completions", body: chat(maxTokens: 2)).status == 200)

        #expect(try await SimHTTP.request(port: port, "POST", "/sleep?level=2").status == 200)
        m = try await metrics(sim)
        #expect(metric(m, "vllm:engine_sleep_state", [#"sleep_state="discard_all""#]) == 1)
        #expect(try await SimHTTP.request(port: port, "POST", "/sleep?level=3").status == 400)
    }

    // MARK: benchmark instrumentation

    /// CLOCK_MONOTONIC in nanoseconds, the clock vllm-sim's `--chunk-timestamps` and `--timing-log` use.
    static func monotonicNanoseconds() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    }

    @Test func chunkTimestampsStampEveryJSONEventWithTheSendInstant() async throws {
        let sim = try await VLLMSim.launch(args: ["--tokens-per-second", "50", "--chunk-timestamps"])
        defer { sim.kill() }
        let tokens = 4
        let before = Self.monotonicNanoseconds()
        let r = try await SimHTTP.request(
            port: sim.port, "POST", "/v1/chat/completions",
            body: chat(maxTokens: tokens, stream: true, extra: #","stream_options":{"include_usage":true}"#))
        let after = Self.monotonicNanoseconds()
        #expect(r.status == 200)
        #expect(r.complete)
        // Still one event per chunk: role + tokens + finish + usage + [DONE].
        let chunks = r.chunkTexts
        #expect(chunks.count == 1 + tokens + 3)
        #expect(chunks.last == "data: [DONE]\n\n")
        var stamps: [Int] = []
        for chunk in chunks.dropLast() {
            #expect(chunk.hasPrefix("data: {") && chunk.hasSuffix("}\n\n"))
            let event = try #require(
                JSONSerialization.jsonObject(with: Data(chunk.dropFirst(6).utf8)) as? [String: Any])
            #expect(event["object"] as? String == "chat.completion.chunk")
            stamps.append(try #require(event["sim_sent_ns"] as? Int, "no sim_sent_ns in \(chunk)"))
        }
        // Instants of the same clock, in send order, within the request as this process saw it.
        #expect(stamps == stamps.sorted())
        #expect(stamps.first! >= before && stamps.last! <= after)
        // The content is unchanged.
        let content = try chunks[1...tokens].map { chunk -> String? in
            let e = try JSONSerialization.jsonObject(with: Data(chunk.dropFirst(6).utf8)) as? [String: Any]
            return (((e?["choices"] as? [[String: Any]])?.first)?["delta"] as? [String: Any])?["content"] as? String
        }
        #expect(content == ["Hello", " ha", " ha", "!"])
    }

    @Test func chunkTimestampsAreOffByDefault() async throws {
        let sim = try await VLLMSim.launch(args: ["--tokens-per-second", "0"])
        defer { sim.kill() }
        let r = try await SimHTTP.request(
            port: sim.port, "POST", "/v1/chat/completions", body: chat(maxTokens: 3, stream: true))
        #expect(r.status == 200 && r.complete)
        #expect(!r.text.contains("sim_sent_ns"))
    }

    @Test func timingLogRecordsListeningFirstHealthAndFirstOtherRequest() async throws {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("vllm-sim-timing-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let before = Self.monotonicNanoseconds()
        let sim = try await VLLMSim.launch(args: ["--startup-seconds", "0.2", "--tokens-per-second", "0", "--timing-log", path])
        defer { sim.kill() }
        let port = sim.port
        #expect(try await SimHTTP.request(port: port, "GET", "/health").status == 200)
        #expect(try await SimHTTP.request(port: port, "GET", "/health").status == 200)
        #expect(try await SimHTTP.request(port: port, "GET", "/v1/models?x=1").status == 200)
        #expect(
            try await SimHTTP.request(port: port, "POST", "/v1/chat/completions", body: chat(maxTokens: 1)).status == 200)
        #expect(try await SimHTTP.request(port: port, "GET", "/health").status == 200)
        let after = Self.monotonicNanoseconds()

        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        let events = try lines.map { line in
            try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        // Only the first of each: later /health answers and the chat request add nothing.
        #expect(events.map { $0["event"] as? String } == ["listening", "health_200", "request"])
        #expect(events.allSatisfy { $0["pid"] as? Int == Int(sim.pid) })
        #expect(events[2]["method"] as? String == "GET")
        #expect(events[2]["path"] as? String == "/v1/models")
        let ns = events.compactMap { $0["ns"] as? Int }
        #expect(ns.count == 3)
        #expect(ns == ns.sorted())
        #expect(ns.first! >= before && ns.last! <= after)
    }

    @Test func timingLogThatCannotBeOpenedStopsTheSimulator() async throws {
        let sim = try VLLMSim.spawn(args: ["--timing-log", "/nonexistent-dir/timing.jsonl"])
        defer { sim.kill() }
        do {
            try await sim.waitUntilServing(timeout: 30)
            Issue.record("expected the simulator to exit")
        } catch VLLMSim.LaunchError.exitedBeforeServing(let status, let output) {
            #expect(status == 2)
            #expect(output.contains("cannot open --timing-log"))
        }
    }
}
