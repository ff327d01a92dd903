#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One event of a single watch request.
public enum WatchEvent<Object: KubeObject>: Sendable {
    case added(Object)
    case modified(Object)
    case deleted(Object)
    /// Progress marker: nothing changed, but the stream is current as of this resourceVersion.
    case bookmark(resourceVersion: String)
}

struct RawWatchEvent: Decodable {
    var type: String
    var object: JSONValue
}

extension ResourceAPI {
    /// One watch request from `resourceVersion` (bookmarks on). The stream ends when the server ends
    /// it (`timeoutSeconds`); an ERROR event (410 Expired above all) is thrown as `KubeError`.
    public func watch(_ options: ListOptions = ListOptions(), timeoutSeconds: Int = 300) async throws -> AsyncThrowingStream<WatchEvent<Object>, any Error> {
        var items = options.items.filter { $0.0 != "timeoutSeconds" && $0.0 != "limit" && $0.0 != "continue" }
        items += [("watch", "1"), ("allowWatchBookmarks", "true"), ("timeoutSeconds", String(timeoutSeconds))]
        let request = HTTPRequest(method: "GET", path: path() + QueryString.build(items))
        let bytes = try await client.stream(request, timeout: .seconds(timeoutSeconds + 30))
        let (events, continuation) = AsyncThrowingStream<WatchEvent<Object>, any Error>.makeStream()
        let task = Task {
            do {
                var lines = LineSplitter()
                for try await chunk in bytes {
                    for line in lines.feed(chunk) { continuation.yield(try Self.decode(line)) }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return events
    }

    static func decode(_ line: [UInt8]) throws -> WatchEvent<Object> {
        let raw: RawWatchEvent
        do { raw = try JSONDecoder().decode(RawWatchEvent.self, from: Data(line)) } catch {
            throw WatchDecodingError(detail: "undecodable watch event: \(String(decoding: line.prefix(200), as: UTF8.self))")
        }
        func object() throws -> Object {
            do { return try raw.object.decode() } catch {
                throw WatchDecodingError(detail: "\(raw.type) event of \(raw.object.objectName ?? "an object") does not decode as \(Object.self): \(error)")
            }
        }
        switch raw.type {
        case "ADDED": return .added(try object())
        case "MODIFIED": return .modified(try object())
        case "DELETED": return .deleted(try object())
        case "BOOKMARK": return .bookmark(resourceVersion: raw.object.resourceVersion ?? "")
        default:
            let status = try? raw.object.decode(as: KubeStatus.self)
            throw KubeError(
                code: status?.code ?? 500, reason: KubeError.Reason(rawValue: status?.reason ?? "") ?? .unknown,
                message: status?.message ?? "watch error", status: status)
        }
    }
}

/// A watch event that does not decode. Resuming from the last resourceVersion would replay it forever,
/// so a `Watcher` lists afresh instead (as after 410 Gone).
public struct WatchDecodingError: Error, Sendable, CustomStringConvertible {
    public var detail: String
    public var description: String { detail }
}

/// Splits a byte stream into newline-terminated lines (watch events are one JSON document per line,
/// but chunk boundaries fall anywhere).
struct LineSplitter {
    private var pending: [UInt8] = []

    mutating func feed(_ chunk: [UInt8]) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var start = chunk.startIndex
        for index in chunk.indices where chunk[index] == UInt8(ascii: "\n") {
            pending += chunk[start..<index]
            if !pending.allSatisfy({ $0 == 32 || $0 == 13 }) { lines.append(pending) }
            pending.removeAll(keepingCapacity: true)
            start = index + 1
        }
        pending += chunk[start...]
        return lines
    }
}
