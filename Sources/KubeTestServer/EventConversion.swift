import Foundation
import Shared

/// core/v1 and events.k8s.io/v1 Events are one store (as in kube-apiserver), kept in the core form and converted
/// when served or written through events.k8s.io/v1 (the upstream field mapping).
enum EventConversion {
    /// events.k8s.io/v1 field ↔ core/v1 field.
    static let mapping: [(v1: String, core: String)] = [
        ("regarding", "involvedObject"), ("note", "message"), ("reportingController", "reportingComponent"),
        ("deprecatedSource", "source"), ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"), ("deprecatedCount", "count"),
    ]

    static func isEventsV1(_ rt: ResourceType) -> Bool { rt.group == "events.k8s.io" && rt.plural == "events" }

    private static func rename(_ obj: JSONValue, from: KeyPath<(v1: String, core: String), String>,
                               to: KeyPath<(v1: String, core: String), String>) -> JSONValue {
        guard var o = obj.objectValue else { return obj }
        for m in mapping {
            let value = o.removeValue(forKey: m[keyPath: from])
            if let value { o[m[keyPath: to]] = value }
        }
        return .object(o)
    }

    static func toV1(_ core: JSONValue) -> JSONValue {
        var o = rename(core, from: \.core, to: \.v1)
        if o["deprecatedSource"] == .object([:]) { o["deprecatedSource"] = nil }
        o["apiVersion"] = "events.k8s.io/v1"
        return o
    }

    static func toCore(_ v1: JSONValue) -> JSONValue {
        var o = rename(v1, from: \.v1, to: \.core)
        o["apiVersion"] = "v1"
        return o
    }
}
