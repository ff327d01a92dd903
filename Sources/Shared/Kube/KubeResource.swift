/// What the client needs to know about a resource type to address it: one protocol, so `KubeAPI<R>`
/// is written once for every type (kube-rs's `Resource` trait).
public protocol KubeResource: KubeObject {
    static var group: String { get }  // "" for the core group
    static var version: String { get }
    static var kind: String { get }
    static var plural: String { get }
    static var isNamespaced: Bool { get }
    var metadata: ObjectMeta { get set }
}

extension KubeResource {
    public static var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    public static var resourceType: ResourceType {
        ResourceType(group: group, version: version, kind: kind, plural: plural, isNamespaced: isNamespaced)
    }
}

/// A resource type named at run time: for untyped objects (manifests, CRDs chill doesn't model).
public struct ResourceType: Sendable, Hashable, CustomStringConvertible {
    public var group: String
    public var version: String
    public var kind: String
    public var plural: String
    public var isNamespaced: Bool

    public init(group: String, version: String, kind: String, plural: String, isNamespaced: Bool) {
        self.group = group
        self.version = version
        self.kind = kind
        self.plural = plural
        self.isNamespaced = isNamespaced
    }

    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    /// `deployments.apps`, as the API server names a resource in messages.
    public var qualifiedPlural: String { group.isEmpty ? plural : "\(plural).\(group)" }
    public var description: String { qualifiedPlural }

    /// `/api/v1/namespaces/ns/pods/name/status`
    public func path(namespace: String?, name: String? = nil, subresource: String? = nil) -> String {
        var path = group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)"
        if isNamespaced, let namespace { path += "/namespaces/\(namespace.percentEncodedPathSegment)" }
        path += "/\(plural)"
        if let name { path += "/\(name.percentEncodedPathSegment)" }
        if let subresource { path += "/\(subresource)" }
        return path
    }
}

extension String {
    /// Percent-encodes everything but RFC 3986 unreserved characters: safe in a path segment or query value.
    public var percentEncodedPathSegment: String {
        var out = ""
        for byte in self.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]], as: UTF8.self)
            }
        }
        return out
    }
}
