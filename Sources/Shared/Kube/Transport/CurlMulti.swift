import CCurl
import Synchronization

/// One libcurl multi handle and the one thread that drives it. Every transfer of the process goes
/// through it, so a hundred watches cost a hundred sockets — or a few HTTP/2 streams on one connection
/// when the server offers h2 — but not a hundred threads.
///
/// curl handles are not thread-safe: only the driver thread touches them. Tasks talk to it through a
/// locked inbox and `curl_multi_wakeup` (the one curl call that is safe from any thread), so adding,
/// cancelling or resuming a transfer takes effect at once rather than at the next poll timeout.
public final class CurlMulti: Sendable {
    /// The process-wide instance; its thread lives as long as the process.
    public static let shared = CurlMulti()

    enum Command: Sendable {
        case add(Transfer, CurlRequest)
        /// The task gave up on the transfer: drop its easy handle now.
        case remove(Transfer)
        /// A paused stream's consumer has room again.
        case resume(Transfer)
    }

    static let threadName = "chill-curl"
    private let multi: MultiHandle
    private let inbox = Mutex<[Command]>([])

    private init() {
        _ = CurlGlobal.initialized
        guard let raw = curl_multi_init() else { fatalError("curl_multi_init failed: out of memory") }
        multi = MultiHandle(raw: raw)
        chill_multi_setopt_long(raw, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX)
        BlockingThread.spawn { [self] in
            // Named, so it shows up as itself in /proc/<pid>/task and debuggers.
            chill_name_current_thread(Self.threadName)
            let driver = Driver(owner: self, multi: multi.raw)
            driver.run()
        }
    }

    func submit(_ command: Command) {
        inbox.withLock { $0.append(command) }
        curl_multi_wakeup(multi.raw)
    }

    fileprivate func takeCommands() -> [Command] {
        inbox.withLock { commands in
            defer { commands.removeAll(keepingCapacity: true) }
            return commands
        }
    }
}

/// The driver thread's own state; never touched from elsewhere.
private final class Driver {
    let owner: CurlMulti
    let multi: UnsafeMutableRawPointer
    var transfers: [ObjectIdentifier: EasyTransfer] = [:]
    var byHandle: [UnsafeMutableRawPointer: EasyTransfer] = [:]

    init(owner: CurlMulti, multi: UnsafeMutableRawPointer) {
        self.owner = owner
        self.multi = multi
    }

    func run() {
        var running: Int32 = 0
        var ready: Int32 = 0
        while true {
            for command in owner.takeCommands() { apply(command) }
            curl_multi_perform(multi, &running)
            collectFinished()
            // Sleeps until a socket is ready, curl's own timer is due, or `submit` wakes it.
            curl_multi_poll(multi, nil, 0, transfers.isEmpty ? 60_000 : 1_000, &ready)
        }
    }

    private func apply(_ command: CurlMulti.Command) {
        switch command {
        case .add(let transfer, let spec):
            // Cancelled before it got here.
            guard !transfer.isEnded else { return }
            let easy = EasyTransfer(spec, transfer: transfer)
            transfers[ObjectIdentifier(transfer)] = easy
            byHandle[easy.handle] = easy
            curl_multi_add_handle(multi, easy.handle)
        case .remove(let transfer):
            guard let easy = transfers[ObjectIdentifier(transfer)] else { return }
            drop(easy)
            transfer.end(with: CancellationError())
        case .resume(let transfer):
            // May deliver the held bytes right here, through the write callback.
            if let easy = transfers[ObjectIdentifier(transfer)] { chill_unpause(easy.handle) }
        }
    }

    private func collectFinished() {
        var queued: Int32 = 0
        while let message = curl_multi_info_read(multi, &queued) {
            guard chill_msg_is_done(message) != 0, let handle = message.pointee.easy_handle,
                  let easy = byHandle[handle] else { continue }
            let code = chill_msg_result(message)
            // The message is invalid once its handle is removed, so read it first.
            easy.complete(code)
            drop(easy)
        }
    }

    private func drop(_ easy: EasyTransfer) {
        curl_multi_remove_handle(multi, easy.handle)
        transfers[ObjectIdentifier(easy.transfer)] = nil
        byHandle[easy.handle] = nil
        easy.cleanup()
    }
}

struct MultiHandle: @unchecked Sendable {
    /// Touched off the driver thread only by `curl_multi_wakeup`, which curl allows.
    let raw: UnsafeMutableRawPointer
}

enum CurlGlobal {
    static let initialized: Void = { _ = curl_global_init(Int(CURL_GLOBAL_ALL)) }()
}
