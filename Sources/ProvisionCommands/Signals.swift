import Dispatch
import Synchronization

/// Counts signals delivered on one queue.
final class SignalCounter: Sendable {
    private let count = Atomic<Int>(0)
    func next() -> Int { count.wrappingAdd(1, ordering: .relaxed).newValue }
}

/// Several signal sources cancelled together.
final class CombinedSource: @unchecked Sendable {  // DispatchSource is thread-safe; only cancel() is called
    private let sources: [any DispatchSourceSignal]
    init(sources: [any DispatchSourceSignal]) { self.sources = sources }
    func cancel() { for source in sources { source.cancel() } }
}
