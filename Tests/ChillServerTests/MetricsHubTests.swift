import Testing
@testable import ChillServer

@Suite struct MetricsHubTests {
    private func text(_ hub: MetricsHub) -> String { String(decoding: hub.render(), as: UTF8.self) }

    @Test func unroutedRequestsAreCountedWithoutModelShapedSeries() {
        let hub = MetricsHub()
        _ = hub.metrics(for: "qwen")
        hub.recordUnrouted(code: 404)
        hub.recordUnrouted(code: 404)
        let text = text(hub)
        #expect(text.contains(#"chill_requests_total{model="",code="404"} 2"#), "\(text)")
        #expect(!text.contains(#"chill_model_state{model=""}"#))
        #expect(text.contains(#"chill_model_state{model="qwen"}"#))
    }

    @Test func scaledDownSecondsIsACounterThatOnlyMovesForward() {
        let hub = MetricsHub()
        let metrics = hub.metrics(for: "qwen")
        metrics.refresh(inFlight: 0, idle: 0, scaledDown: 100)  // restored from the status
        metrics.refresh(inFlight: 0, idle: 0, scaledDown: 130)
        metrics.refresh(inFlight: 0, idle: 0, scaledDown: 120)  // never backwards
        let text = text(hub)
        #expect(text.contains("# TYPE chill_scaled_down_seconds_total counter"), "\(text)")
        #expect(text.contains(#"chill_scaled_down_seconds_total{model="qwen"} 130"#), "\(text)")
    }
}
