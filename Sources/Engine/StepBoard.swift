/// Where hosts wait for each other's steps ("agents after the first server").
actor StepBoard {
    private var finished: [String: Bool] = [:]
    private var waiters: [String: [CheckedContinuation<Bool, Never>]] = [:]
    /// Values steps shared (`Step.shares`), for the steps that run after them.
    private(set) var shared: [String: String] = [:]

    func share(_ values: [String: String]) {
        shared.merge(values) { _, new in new }
    }

    private static func key(_ host: String, _ step: String) -> String { host + "\u{0}" + step }

    /// When steps that changed their host (status `changed`) finished: whoever waited for them and read its own
    /// host before that reads it again.
    private var changedAt: [String: ContinuousClock.Instant] = [:]

    /// Marks a step done (converged or not) and wakes whoever waits for it.
    func finish(host: String, step: String, converged: Bool, changed didChange: Bool = false) {
        let key = Self.key(host, step)
        finished[key] = converged
        if didChange { changedAt[key] = .now }
        for waiter in waiters.removeValue(forKey: key) ?? [] { waiter.resume(returning: converged) }
    }

    /// Whether the step finished changing something on that host at or after `since` (false until it has finished).
    func changed(host: String, step: String, since: ContinuousClock.Instant) -> Bool {
        changedAt[Self.key(host, step)].map { $0 >= since } ?? false
    }

    /// Whether the step converged on that host, once it has finished there.
    func wait(host: String, step: String) async -> Bool {
        let key = Self.key(host, step)
        if let done = finished[key] { return done }
        return await withCheckedContinuation { waiters[key, default: []].append($0) }
    }
}

/// Hosts out of service at once, per disruption group (`Action.disruptive`): a counting semaphore per group.
actor DisruptionSlots {
    private var busy: [String: Int] = [:]
    private var waiting: [String: [CheckedContinuation<Void, Never>]] = [:]

    func acquire(_ group: String, width: Int) async {
        if busy[group, default: 0] < max(width, 1) {
            busy[group, default: 0] += 1
            return
        }
        await withCheckedContinuation { waiting[group, default: []].append($0) }
    }

    /// Hands the slot straight to the next waiter, or frees it.
    func release(_ group: String) {
        if var queue = waiting[group], !queue.isEmpty {
            let next = queue.removeFirst()
            waiting[group] = queue
            next.resume()
        } else {
            busy[group, default: 1] -= 1
        }
    }
}
