extension Duration {
    /// Whole milliseconds, for timings shown to people and stored in the journal.
    public var inMilliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
