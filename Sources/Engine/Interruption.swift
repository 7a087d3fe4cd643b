import Synchronization

/// Ctrl-C, as the engine sees it: once requested, no new step starts; running remote commands finish.
public final class Interruption: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    public var requested: Bool { flag.load(ordering: .relaxed) }
    public func request() { flag.store(true, ordering: .relaxed) }
}
