import Foundation

/// A request's path and query, decoded.
struct RequestTarget: Sendable {
    var segments: [String]
    var query: [String: String]
    var rawPath: String

    init(_ pathAndQuery: String) {
        rawPath = pathAndQuery
        let parts = pathAndQuery.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = parts.first.map(String.init) ?? "/"
        segments = path.split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        query = [:]
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let k = Self.decode(kv[0])
                // First value wins, like Go's url.Values.Get.
                if query[k] == nil { query[k] = kv.count > 1 ? Self.decode(kv[1]) : "" }
            }
        }
    }

    private static func decode(_ s: Substring) -> String {
        String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s)
    }

    func flag(_ name: String) -> Bool {
        guard let v = query[name] else { return false }
        return v == "true" || v == "1"
    }
}

/// Where a resource request points.
struct ResourcePath: Sendable {
    var type: ResourceType
    var namespace: String?
    var name: String?
    var subresource: String?
}

enum Route: Sendable {
    case resource(ResourcePath)
    case discoveryRoot(legacy: Bool)          // /api, /apis
    case discoveryGroup(String)               // /apis/{group}
    case discoveryGroupVersion(String, String) // /api/v1, /apis/{group}/{version}
    case version
    /// `/healthz`, `/readyz`, `/livez` (public, `ok`).
    case health
    case notFound
}

extension KubeStore {
    func route(_ t: RequestTarget) -> Route {
        let s = t.segments
        if s == ["version"] { return .version }
        if s.count == 1, ["healthz", "readyz", "livez"].contains(s[0]) { return .health }
        guard let first = s.first else { return .notFound }
        let group: String, version: String, rest: ArraySlice<String>
        switch first {
        case "api":
            if s.count == 1 { return .discoveryRoot(legacy: true) }
            group = ""; version = s[1]; rest = s.dropFirst(2)
        case "apis":
            if s.count == 1 { return .discoveryRoot(legacy: false) }
            if s.count == 2 { return types.values.contains { $0.group == s[1] } ? .discoveryGroup(s[1]) : .notFound }
            group = s[1]; version = s[2]; rest = s.dropFirst(3)
        default:
            return .notFound
        }
        guard groupVersionExists(group: group, version: version) else { return .notFound }
        let r = Array(rest)
        if r.isEmpty { return .discoveryGroupVersion(group, version) }
        // /namespaces/{ns}/{plural}[/{name}[/{sub}]]
        if r.count >= 3, r[0] == "namespaces", let rt = type(group: group, version: version, plural: r[2]), rt.namespaced {
            if r.count > 5 { return .notFound }
            return .resource(ResourcePath(type: rt, namespace: r[1], name: r.count > 3 ? r[3] : nil,
                                          subresource: r.count > 4 ? r[4] : nil))
        }
        guard let rt = type(group: group, version: version, plural: r[0]), r.count <= 3 else { return .notFound }
        return .resource(ResourcePath(type: rt, namespace: nil, name: r.count > 1 ? r[1] : nil,
                                      subresource: r.count > 2 ? r[2] : nil))
    }
}
