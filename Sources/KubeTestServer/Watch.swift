import Foundation
import Shared
import Synchronization

/// One open watch stream. Lines are buffered until a writer (the NIO channel or an in-process
/// consumer) attaches; `end` finishes the stream normally (0-length chunk), `abort` drops it.
public final class WatchSession: Sendable {
    public enum Output: Sendable {
        case line(Data)
        case end
        case abort
    }

    private struct State {
        var buffer: [Output] = []
        var writer: (@Sendable (Output) -> Void)?
        var finished = false
        var onClose: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())
    let id: Int

    init(id: Int) { self.id = id }

    func send(_ output: Output) {
        let writer: (@Sendable (Output) -> Void)? = state.withLock { s in
            if s.finished { return nil }
            if case .line = output {} else { s.finished = true }
            if let w = s.writer { return w }
            s.buffer.append(output)
            return nil
        }
        writer?(output)
    }

    func attach(_ writer: @escaping @Sendable (Output) -> Void) {
        let pending: [Output] = state.withLock { s in
            s.writer = writer
            defer { s.buffer.removeAll() }
            return s.buffer
        }
        for o in pending { writer(o) }
    }

    func setOnClose(_ f: @escaping @Sendable () -> Void) { state.withLock { $0.onClose = f } }

    /// The client went away: stop the server side.
    func clientClosed() {
        let f = state.withLock { s -> (@Sendable () -> Void)? in
            s.finished = true
            return s.onClose
        }
        f?()
    }
}

struct WatchRegistration {
    var session: WatchSession
    var path: ResourcePath
    var labels: LabelSelector
    var fields: FieldSelector
    var fromRV: Int
    var bookmarks: Bool
    var tasks: [Task<Void, Never>] = []
}

extension KubeStore {
    func startWatch(_ p: ResourcePath, _ t: RequestTarget) throws(APIError) -> WatchSession {
        let (ls, fs) = try selectors(p, t)
        let rvParam = t.query["resourceVersion"]
        let rv = try parseRV(rvParam)
        let bookmarks = t.flag("allowWatchBookmarks")
        let sendInitial = t.query["sendInitialEvents"].map { $0 == "true" }
        if sendInitial != nil, t.query["resourceVersionMatch"] != "NotOlderThan" {
            throw APIError.invalid(kind: "ListOptions", group: "meta.k8s.io", name: "",
                                   causes: [Cause(reason: "FieldValueForbidden",
                                                  message: "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                                                  field: "resourceVersionMatch")])
        }
        let session = WatchSession(id: nextWatcherID)
        nextWatcherID += 1
        let initial = sendInitial ?? (rv == nil || rv == 0)
        var reg = WatchRegistration(session: session, path: p, labels: ls, fields: fs,
                                    fromRV: initial ? currentResourceVersion : (rv ?? currentResourceVersion), bookmarks: bookmarks)
        if !initial, let rv, rv < compactedResourceVersion {
            session.send(.line(eventLine("ERROR", APIError.tooOldResourceVersion(rv, oldest: compactedResourceVersion + 1), sorted: false)))
            session.send(.end)
            return session
        }
        if initial {
            for (_, obj) in (objects[p.type.storageKey] ?? [:]).sorted(by: { $0.key < $1.key }) where matches(obj, p, ls, fs) {
                session.send(.line(eventLine("ADDED", present(obj, as: p.type), sorted: p.type.isCustom)))
            }
            if bookmarks { session.send(.line(bookmarkLine(p.type, initialEventsEnd: true))) }
        } else if let rv {
            for change in history where change.resourceVersion > rv && change.resource.storageKey == p.type.storageKey {
                if let line = line(for: change, reg) { session.send(.line(line)) }
            }
        }
        let id = session.id
        session.setOnClose { [weak self] in Task { await self?.removeWatcher(id) } }
        if let timeout = Int(t.query["timeoutSeconds"] ?? ""), timeout > 0 {
            reg.tasks.append(Task { [weak self] in
                try? await Task.sleep(for: .seconds(timeout))
                if Task.isCancelled { return }
                await self?.endWatch(id, bookmark: bookmarks)
            })
        }
        if bookmarks {
            let interval = bookmarkInterval
            reg.tasks.append(Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    if Task.isCancelled { return }
                    await self?.sendBookmark(to: id)
                }
            })
        }
        watchers[id] = reg
        return session
    }

    func eventLine(_ type: String, _ obj: JSONValue, sorted: Bool) -> Data {
        var d = Data("{\"type\":\"\(type)\",\"object\":".utf8)
        d.append(KubeJSON.encode(obj, sorted: sorted, newline: false))
        d.append(Data("}\n".utf8))
        return d
    }

    func bookmarkLine(_ rt: ResourceType, initialEventsEnd: Bool = false) -> Data {
        var meta: [String: JSONValue] = ["resourceVersion": .string(String(currentResourceVersion))]
        if initialEventsEnd { meta["annotations"] = ["k8s.io/initial-events-end": "true"] }
        return eventLine("BOOKMARK", .object(["kind": .string(rt.kind), "apiVersion": .string(rt.apiVersion), "metadata": .object(meta)]),
                         sorted: rt.isCustom)
    }

    /// The event a watcher should see for a change, taking selectors into account (an object leaving the
    /// selection is DELETED, one entering it ADDED).
    func line(for change: KubeChange, _ reg: WatchRegistration) -> Data? {
        guard change.resourceVersion > reg.fromRV else { return nil }
        let now = matches(change.object, reg.path, reg.labels, reg.fields)
        let before = change.previous.map { matches($0, reg.path, reg.labels, reg.fields) } ?? false
        let type: String
        switch change.type {
        case .added: guard now else { return nil }; type = "ADDED"
        case .deleted: guard before || now else { return nil }; type = "DELETED"
        case .modified:
            switch (before, now) {
            case (true, true): type = "MODIFIED"
            case (false, true): type = "ADDED"
            case (true, false): type = "DELETED"
            case (false, false): return nil
            }
        }
        return eventLine(type, present(change.object, as: reg.path.type), sorted: reg.path.type.isCustom)
    }

    func dispatchToWatchers(_ change: KubeChange) {
        for (_, reg) in watchers where reg.path.type.storageKey == change.resource.storageKey {
            if let l = line(for: change, reg) { reg.session.send(.line(l)) }
        }
    }

    func removeWatcher(_ id: Int) {
        guard let reg = watchers.removeValue(forKey: id) else { return }
        for t in reg.tasks { t.cancel() }
    }

    func endWatch(_ id: Int, bookmark: Bool) {
        guard let reg = watchers[id] else { return }
        if bookmark { reg.session.send(.line(bookmarkLine(reg.path.type))) }
        reg.session.send(.end)
        removeWatcher(id)
    }

    func sendBookmark(to id: Int) {
        guard let reg = watchers[id], reg.bookmarks else { return }
        reg.session.send(.line(bookmarkLine(reg.path.type)))
    }

    // MARK: - Test controls

    /// Sends a BOOKMARK now on every watch that allowed bookmarks.
    public func sendBookmarks() {
        for id in watchers.keys { sendBookmark(to: id) }
    }

    /// Closes every open watch abruptly (the connection is dropped, no final chunk), to test client resume.
    public func dropWatches() {
        for (id, reg) in watchers {
            reg.session.send(.abort)
            removeWatcher(id)
        }
    }

    /// Ends every open watch cleanly (as when `timeoutSeconds` expires).
    public func endWatches() {
        for id in watchers.keys { endWatch(id, bookmark: false) }
    }

    public var openWatchCount: Int { watchers.count }
}
