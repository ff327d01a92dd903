import NIOHTTP1

/// RFC 9110 §7.6.1: headers that describe one connection and must not be forwarded.
enum HeaderRewriting {
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]

    /// Drops hop-by-hop headers, including any the `Connection` header names. Allocation-free
    /// when there are none (the common case on the hot path).
    static func removeHopByHop(_ headers: inout HTTPHeaders) {
        var found = false
        for header in headers where isHopByHop(header.name) { found = true; break }
        guard found else { return }
        // Names listed in `Connection` first (read before it goes), then the fixed set.
        for value in headers["connection"] {
            for name in value.split(separator: ",") { headers.remove(name: String(name.trimmingSpaces)) }
        }
        for name in hopByHopList { headers.remove(name: name) }
    }

    private static func isHopByHop(_ name: String) -> Bool {
        // Compare case-insensitively without lowercasing (no allocation).
        for candidate in hopByHopList where candidate.utf8.count == name.utf8.count {
            if zip(candidate.utf8, name.utf8).allSatisfy({ $0 == ($1 | 0x20) || $0 == $1 }) { return true }
        }
        return false
    }

    private static let hopByHopList = Array(hopByHop)

    /// The request as the backend sees it: hop-by-hop headers gone, `X-Forwarded-*` added.
    static func upstreamRequestHead(_ head: HTTPRequestHead, clientAddress: String?, scheme: String = "http") -> HTTPRequestHead {
        var head = head
        removeHopByHop(&head.headers)
        if let clientAddress {
            if let existing = head.headers.first(name: "x-forwarded-for") {
                head.headers.replaceOrAdd(name: "x-forwarded-for", value: "\(existing), \(clientAddress)")
            } else {
                head.headers.add(name: "x-forwarded-for", value: clientAddress)
            }
        }
        if !head.headers.contains(name: "x-forwarded-proto") { head.headers.add(name: "x-forwarded-proto", value: scheme) }
        head.version = .http1_1
        return head
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return s
    }
}
