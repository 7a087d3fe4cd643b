import Foundation

/// How often and how long a GitLab call is retried after 429, 5xx or a transport failure that allows it.
///
/// The n-th retry waits `initialDelay × multiplierⁿ⁻¹`, capped at `maxDelay`, less a random part of up to `jitter`
/// of it (so many clients do not retry in step). A Retry-After from GitLab replaces that delay. No retry starts
/// once `maxTotal` has passed since the first attempt, and there are at most `maxAttempts` attempts in all.
public struct RetryPolicy: Sendable, Equatable {
    public var maxAttempts: Int
    public var initialDelay: Duration
    public var maxDelay: Duration
    public var multiplier: Double
    /// 0 (every delay exactly as computed) to 1 (anywhere between zero and it).
    public var jitter: Double
    public var maxTotal: Duration

    public init(maxAttempts: Int = 5, initialDelay: Duration = .milliseconds(500), maxDelay: Duration = .seconds(30),
                multiplier: Double = 2, jitter: Double = 0.25, maxTotal: Duration = .seconds(120)) {
        self.maxAttempts = max(1, maxAttempts)
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.multiplier = max(1, multiplier)
        self.jitter = min(1, max(0, jitter))
        self.maxTotal = maxTotal
    }

    /// One attempt, no retries.
    public static let never = RetryPolicy(maxAttempts: 1)

    /// The wait after failed attempt `attempt` (1 for the first), before jitter.
    public func backoff(afterAttempt attempt: Int) -> Duration {
        let factor = pow(multiplier, Double(max(0, attempt - 1)))
        let seconds = min(maxDelay.seconds, initialDelay.seconds * factor)
        return .milliseconds(Int((seconds * 1000).rounded()))
    }

    /// The wait after failed attempt `attempt`: GitLab's Retry-After when it gave one, else the jittered backoff.
    public func delay(afterAttempt attempt: Int, retryAfter: Duration?,
                      using generator: inout some RandomNumberGenerator) -> Duration {
        if let retryAfter { return max(.zero, retryAfter) }
        let full = backoff(afterAttempt: attempt)
        guard jitter > 0 else { return full }
        let cut = Double.random(in: 0...jitter, using: &generator)
        return .milliseconds(Int((full.seconds * (1 - cut) * 1000).rounded()))
    }
}

/// The Retry-After header: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
public enum RetryAfter {
    /// How long to wait from `now`; nil when the value is neither form. A date in the past means no wait.
    public static func parse(_ value: String, now: Date = Date()) -> Duration? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if !text.isEmpty, text.allSatisfy(\.isASCII), text.allSatisfy(\.isNumber), let seconds = Int(text) {
            return .seconds(seconds)
        }
        for format in formats {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: text) {
                return .milliseconds(Int((max(0, date.timeIntervalSince(now)) * 1000).rounded()))
            }
        }
        return nil
    }

    /// IMF-fixdate, then the two obsolete forms recipients must still accept (RFC 850 and asctime).
    private static let formats = ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"]
}

extension Duration {
    var seconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) / 1e18
    }
}
