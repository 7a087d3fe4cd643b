/// Where hosts wait for each other's steps ("agents after the first server").
actor StepBoard {
    private var finished: [String: Bool] = [:]
    private var waiters: [String: [CheckedContinuation<Bool, Never>]] = [:]

    private static func key(_ host: String, _ step: String) -> String { host + "\u{0}" + step }

    /// Marks a step done (converged or not) and wakes whoever waits for it.
    func finish(host: String, step: String, converged: Bool) {
        let key = Self.key(host, step)
        finished[key] = converged
        for waiter in waiters.removeValue(forKey: key) ?? [] { waiter.resume(returning: converged) }
    }

    /// Whether the step converged on that host, once it has finished there.
    func wait(host: String, step: String) async -> Bool {
        let key = Self.key(host, step)
        if let done = finished[key] { return done }
        return await withCheckedContinuation { waiters[key, default: []].append($0) }
    }
}
