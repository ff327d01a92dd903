import Foundation
import KubeTestServer
import Shared
import Testing
@testable import ChillServer

/// A VLLMModel the API server stored although it breaks the CRD's CEL rules (the test server, like
/// an API server whose CRD predates a rule, does not evaluate them): chill-server says so in the
/// model's status, creates nothing for it, answers its requests with a clear 503, and keeps serving
/// the other models.
@Suite(.serialized) struct ControllerBadInputTests {
    @Test(.timeLimit(.minutes(1)))
    func anInvalidVLLMModelIsReportedInItsStatusNotActedOn() async throws {
        // broken's port is never used: nothing is created for it.
        try await E2ECluster.with([.init("good"), .init("broken", spec: ["minReplicas": 2, "maxReplicas": 1], pod: .port(try VLLMSim.freePort()))]) { c in
            let (kube, chill) = (c.kube, c.chill)
            var failed: JSONValue?
            try await E2EWait.until("broken's status says its spec is invalid") {
                let status = await kube.server.handle(method: "GET", path: "/apis/chill.dev/v1alpha1/vllmmodels/broken").json?["status"]
                failed = status?["conditions"]?.arrayValue?.first { $0["type"]?.stringValue == ChillContract.conditionFailed }
                return (failed?["status"]?.stringValue == "True" && failed?["reason"]?.stringValue == "InvalidSpec", status?.jsonString() ?? "no status")
            }
            #expect(failed?["message"]?.stringValue?.contains("minReplicas") == true, "\(failed?.jsonString() ?? "")")
            // Nothing applied for it; a request for it is a fast 503 naming the cause, not a wake.
            #expect(await kube.replicas(model: "broken") == nil)
            let r = try await chill.request("POST", "/v1/chat/completions", body: ControllerEndToEndTests.chat("broken"))
            try BadInput.expectError(r, status: 503, type: "service_unavailable", code: "model_invalid_spec", messageContains: "minReplicas")
            #expect(await kube.replicas(model: "broken") == nil)
            // The valid model is unaffected.
            let good = try await chill.request("POST", "/v1/chat/completions", body: ControllerEndToEndTests.chat("good"))
            #expect(good.status == 200, "\(good)")
            #expect(try await chill.request("GET", "/health").status == 200)
        }
    }
}
