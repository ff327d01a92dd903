import Testing
@testable import ChillServer

/// The body scan that routes a request by its top-level `model`, and the registry it resolves in.
@Suite struct ModelRoutingTests {
    static func scan(_ chunks: [String]) -> ModelFieldScanner.Result {
        var scanner = ModelFieldScanner()
        for chunk in chunks {
            let result = scanner.feed(Array(chunk.utf8))
            if result != .pending { return result }
        }
        return scanner.finish()
    }

    @Test(arguments: [
        (#"{"model":"qwen","messages":[]}"#, ModelFieldScanner.Result.found("qwen")),
        (#"{"messages":[{"role":"user","content":"{\"model\":\"evil\"}"}],"model":"llama"}"#, .found("llama")),
        (#"{"tools":[{"model":"nested"}],"model" : "top"}"#, .found("top")),
        (#"{"messages":[]}"#, .absent),
        (#"{"model":42}"#, .invalid),
        (#"{"model":null}"#, .invalid),
        (#"{"model":"a\"b"}"#, .found(#"a"b"#)),
        (#"  {"model":"spaced"}"#, .found("spaced")),
        ("model=whisper", .notJSON),
        ("", .notJSON),
        (#"{"messages":[1,2"#, .malformed),
        (#"{"prompt":"model","x":{"model":"no"}}"#, .absent),
    ])
    func scan(_ body: String, _ expected: ModelFieldScanner.Result) {
        #expect(Self.scan([body]) == expected)
        // Byte by byte: the same answer however the body is split.
        #expect(Self.scan(body.map { String($0) }) == expected)
    }

    @Test func aHugeNameIsRefusedNotBuffered() {
        #expect(Self.scan([#"{"model":""# + String(repeating: "x", count: 10_000) + #""}"#]) == .invalid)
    }

    @Test func theScanStopsAtTheModelAndNeverReadsTheRest() {
        var scanner = ModelFieldScanner()
        #expect(scanner.feed(Array(#"{"model":"m","#.utf8)) == .found("m"))
        #expect(scanner.feed(Array("garbage that is never parsed".utf8)) == .found("m"))
    }

    @Test func registryResolvesByServedNameAndRefusesAmbiguity() {
        let registry = ModelRegistry()
        let a = ServedModelHandle(id: "a", servedName: "qwen", proxy: StubModel(), control: StubModel())
        let b = ServedModelHandle(id: "b", servedName: "qwen", proxy: StubModel(), control: StubModel())
        #expect(registry.put(a))
        #expect(!registry.put(b), "two models may not serve one name")
        guard case .model(let found) = registry.resolve("qwen") else { Issue.record("qwen not found"); return }
        #expect(found.id == "a")
        guard case .unknown(_, let available) = registry.resolve("nope") else { Issue.record("nope resolved"); return }
        #expect(available == ["qwen"])
        // One model: a request without `model` goes to it; with two and none active, it is refused.
        guard case .model = registry.resolve(nil) else { Issue.record("single model not the default"); return }
        #expect(registry.put(ServedModelHandle(id: "c", servedName: "llama", proxy: StubModel(), control: StubModel())))
        guard case .noActiveModel = registry.resolve(nil) else { Issue.record("no active model expected"); return }
        registry.setActive("c")
        guard case .model(let active) = registry.resolve(nil) else { Issue.record("active not resolved"); return }
        #expect(active.id == "c")
    }

    @Test func heldBytesBudgetIsShared() {
        let budget = ByteBudget(limit: 100)
        #expect(budget.reserve(60))
        #expect(!budget.reserve(50))
        budget.release(60)
        #expect(budget.reserve(100))
        #expect(budget.inUse == 100)
    }

    @Test func apiKeysCompareWholeValues() {
        let key = APIKey("s3cret")!
        #expect(key.matches(authorization: "Bearer s3cret"))
        #expect(key.matches(authorization: "bearer s3cret"))
        #expect(!key.matches(authorization: "Bearer s3cre"))
        #expect(!key.matches(authorization: "Bearer s3cret2"))
        #expect(!key.matches(authorization: nil))
        #expect("\(key)" == "<redacted>")
        #expect(APIKey("") == nil)
    }
}

/// A model that is never ready and does nothing, for registry tests.
struct StubModel: ProxyModel, ModelControl {
    var name = "stub"
    var metrics: ChillMetrics? { nil }
    var gpus: Int { 1 }
    var isServing: Bool { false }
    func leaseTarget() -> UpstreamTarget? { nil }
    func returnTarget(_ target: UpstreamTarget) {}
    func enterIfReady() -> Bool { false }
    func exit() {}
    func admit() async throws {}
    func start() async {}
    func stop(force: Bool) async {}
    func snapshot() async -> ScalerSnapshot {
        ScalerSnapshot(phase: .scaledDown, inFlight: 0, held: 0, idleSeconds: 0, phaseSeconds: 0, uptimeSeconds: 0, stats: WakeStats(), backend: BackendStatus())
    }
    func hasObservedBackend() async -> Bool { true }
    func rejectHeld() async -> Int { 0 }
}
