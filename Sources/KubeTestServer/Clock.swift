import Foundation
import Synchronization

/// How the test server tells time: the wall clock, or a manual clock moved only by `advance(by:)`.
public enum ClockMode: Sendable {
    case system
    /// Starts at `start` and moves only when the test calls `KubeTestServer.advance(by:)`.
    case manual(start: Date)
    public static var manual: ClockMode { .manual(start: Date(timeIntervalSince1970: 1_795_000_000)) }
}

final class TestClock: Sendable {
    private let offset: Mutex<TimeInterval>
    private let manualStart: Date?

    init(_ mode: ClockMode) {
        switch mode {
        case .system: manualStart = nil
        case .manual(let start): manualStart = start
        }
        offset = Mutex(0)
    }

    var isManual: Bool { manualStart != nil }

    func now() -> Date {
        let off = offset.withLock { $0 }
        return (manualStart ?? Date()).addingTimeInterval(off)
    }

    func advance(by d: Duration) {
        offset.withLock { $0 += d.seconds }
    }
}
