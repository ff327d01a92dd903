import Prometheus
import Synchronization

/// The one registry behind `/proxy/metrics`: every model's `chill_*` series (labelled `model`) and
/// the process metrics.
final class MetricsHub: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let process = ProcessMetrics()
    private let models = Mutex<[String: ChillMetrics]>([:])
    private let unrouted = Mutex<[Int: Counter]>([:])

    init() {}

    /// The series of one model; the same object for the same name (a re-created model keeps counting).
    func metrics(for model: String) -> ChillMetrics {
        models.withLock { models in
            if let existing = models[model] { return existing }
            let created = ChillMetrics(model: model, registry: registry)
            models[model] = created
            return created
        }
    }

    /// A request answered before any model was chosen (unknown model, bad body, no key): counted as
    /// `chill_requests_total{model=""}` only, so no model-shaped series exist for "".
    func recordUnrouted(code: Int) {
        unrouted.withLock { counters in
            if let counter = counters[code] { return counter }
            let counter = registry.makeCounter(
                name: "chill_requests_total", labels: [("model", ""), ("code", String(code))], help: "Proxied requests by status code.")
            counters[code] = counter
            return counter
        }.increment()
    }

    /// The Prometheus text, after `refresh` set each model's scrape-time gauges.
    func render() -> [UInt8] {
        var buffer = registry.emitToBuffer()
        buffer += process.render()
        return buffer
    }
}

/// One model's Prometheus series. Counters on the request path are looked up once per status code
/// and cached; gauges that describe state are set at scrape time.
final class ChillMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let model: String
    private let requestCounters = Mutex<[Int: Counter]>([:])
    private let requestDuration: DurationHistogram
    private let wakeDuration: DurationHistogram
    private let modelState: Gauge
    private let held: Gauge
    private let inFlight: Gauge
    private let idleSeconds: Gauge
    private let scaledDownSeconds: Counter
    /// What `scaledDownSeconds` has been advanced to (a counter moves by deltas).
    private let scaledDownCounted = Mutex<Double>(0)

    init(model: String, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.model = model
        self.registry = registry
        let labels = [("model", model)]
        requestDuration = registry.makeDurationHistogram(
            name: "chill_request_duration_seconds", labels: labels,
            buckets: [.milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5), .seconds(15), .seconds(60), .seconds(300)],
            help: "Time from request to the end of the response, including any wake.")
        wakeDuration = registry.makeDurationHistogram(
            name: "chill_wake_duration_seconds", labels: labels,
            buckets: [.seconds(1), .seconds(5), .seconds(15), .seconds(30), .seconds(60), .seconds(120), .seconds(300), .seconds(600)],
            help: "Time from scale-up to the model serving.")
        modelState = registry.makeGauge(name: "chill_model_state", labels: labels, help: "0 ScaledDown, 1 Waking, 2 Ready, 3 Draining, 4 Failed.")
        held = registry.makeGauge(name: "chill_held_requests", labels: labels, help: "Requests held while the model wakes.")
        inFlight = registry.makeGauge(name: "chill_inflight_requests", labels: labels, help: "Requests being served.")
        idleSeconds = registry.makeGauge(name: "chill_idle_seconds", labels: labels, help: "Seconds since the last request ended (0 while busy).")
        scaledDownSeconds = registry.makeCounter(
            name: "chill_scaled_down_seconds_total", labels: labels,
            help: "Seconds spent scaled to zero (on Kubernetes continued from status.scaledDownSeconds after a restart).")
        for result in ["success", "failed", "timeout", "stopped"] {
            _ = registry.makeCounter(name: "chill_wakes_total", labels: [("model", model), ("result", result)], help: "Wakes by result.")
        }
    }

    func recordRequest(code: Int, duration: Duration) {
        let counter = requestCounters.withLock { counters in
            if let counter = counters[code] { return counter }
            let counter = registry.makeCounter(
                name: "chill_requests_total", labels: [("model", model), ("code", String(code))], help: "Proxied requests by status code.")
            counters[code] = counter
            return counter
        }
        counter.increment()
        requestDuration.record(duration)
    }

    func recordWake(result: String, seconds: Double?) {
        registry.makeCounter(name: "chill_wakes_total", labels: [("model", model), ("result", result)], help: "Wakes by result.").increment()
        if let seconds { wakeDuration.record(.milliseconds(Int64(seconds * 1000))) }
    }

    func setState(_ phase: ModelPhase) { modelState.set(phase.metricValue) }
    func setHeld(_ count: Int) { held.set(Double(count)) }

    /// Sets the gauges read at scrape time.
    func refresh(inFlight inFlightNow: Int, idle: Double, scaledDown: Double) {
        inFlight.set(Double(inFlightNow))
        idleSeconds.set(idle)
        let delta = scaledDownCounted.withLock { counted in
            defer { counted = max(counted, scaledDown) }
            return scaledDown - counted
        }
        if delta > 0 { scaledDownSeconds.increment(by: delta) }
    }
}
