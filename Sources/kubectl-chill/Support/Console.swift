import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where commands write. Real runs go to stdout/stderr; tests swap in a capturing console through
/// the task-local `Console.current`, so every command's output can be asserted against golden text.
final class Console: Sendable {
    @TaskLocal static var current = Console()

    private final class Capture: Sendable {
        let text = Mutex<(out: String, err: String)>(("", ""))
    }

    private let captured: Capture?
    /// What a capturing console answers to `ask`, in order.
    private let answers: Mutex<[String]>
    let isTerminal: Bool
    /// A person can answer a question: stdin and stderr are TTYs (a capturing console: when "terminal").
    let isInteractive: Bool
    let colorEnabled: Bool

    /// The process's own stdout/stderr. Colour and progress only on a TTY, never with NO_COLOR.
    init() {
        captured = nil
        answers = Mutex([])
        isTerminal = isatty(1) != 0
        isInteractive = isatty(0) != 0 && isatty(2) != 0
        colorEnabled = isTerminal && getenv("NO_COLOR") == nil
    }

    /// A console that records what is written, for tests; `answers` are what a person types to `ask`.
    init(capturing: Void, isTerminal: Bool = false, answers: [String] = []) {
        captured = Capture()
        self.answers = Mutex(answers)
        self.isTerminal = isTerminal
        isInteractive = isTerminal
        colorEnabled = false
    }

    /// Asks on stderr and reads one line from stdin; nil when no one can answer (not interactive, EOF).
    func ask(_ prompt: String) -> String? {
        guard isInteractive else { return nil }
        err(prompt, terminator: "")
        if captured != nil {
            let answer = answers.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            err(answer ?? "")
            return answer
        }
        return readLine()
    }

    func out(_ text: String, terminator: String = "\n") {
        if let captured { captured.text.withLock { $0.out += text + terminator } } else { Self.write(1, text + terminator) }
    }

    func err(_ text: String, terminator: String = "\n") {
        if let captured { captured.text.withLock { $0.err += text + terminator } } else {
            Self.write(2, text + terminator)
        }
    }

    /// A line that replaces itself on a TTY (wait's live progress); plain lines otherwise.
    func progress(_ text: String) {
        if isTerminal && captured == nil { Self.write(1, "\r\u{1B}[2K" + text) } else { out(text) }
    }

    private static func write(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return }
            bytes = bytes.dropFirst(n)
        }
    }

    var output: String { captured?.text.withLock { $0.out } ?? "" }
    var errorOutput: String { captured?.text.withLock { $0.err } ?? "" }

    func bold(_ text: String) -> String { colorEnabled ? "\u{1B}[1m\(text)\u{1B}[0m" : text }
    func green(_ text: String) -> String { colorEnabled ? "\u{1B}[32m\(text)\u{1B}[0m" : text }
    func red(_ text: String) -> String { colorEnabled ? "\u{1B}[31m\(text)\u{1B}[0m" : text }
    func yellow(_ text: String) -> String { colorEnabled ? "\u{1B}[33m\(text)\u{1B}[0m" : text }
}
