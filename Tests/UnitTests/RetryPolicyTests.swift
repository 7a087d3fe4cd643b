import Foundation
import GitLab
import Testing

@Suite struct RetryPolicyTests {
    /// 2015-10-21 07:27:30 UTC.
    let now = Date(timeIntervalSince1970: 1_445_412_450)

    @Test func retryAfterInSeconds() {
        #expect(RetryAfter.parse("120", now: now) == .seconds(120))
        #expect(RetryAfter.parse(" 7 ", now: now) == .seconds(7))
        #expect(RetryAfter.parse("0", now: now) == .zero)
    }

    @Test func retryAfterAsAnHTTPDateInEachForm() {
        #expect(RetryAfter.parse("Wed, 21 Oct 2015 07:28:00 GMT", now: now) == .seconds(30))
        #expect(RetryAfter.parse("Wednesday, 21-Oct-15 07:28:00 GMT", now: now) == .seconds(30))
        #expect(RetryAfter.parse("Wed Oct 21 07:28:00 2015", now: now) == .seconds(30))
        #expect(RetryAfter.parse("Wed, 21 Oct 2015 07:00:00 GMT", now: now) == .zero)
    }

    @Test func retryAfterThatIsNeitherIsIgnored() {
        for value in ["", "soon", "-5", "1.5", "Wed, 99 Oct 2015 07:28:00 GMT"] {
            #expect(RetryAfter.parse(value, now: now) == nil, "\(value)")
        }
    }

    @Test func backoffDoublesUpToItsCap() {
        let policy = RetryPolicy(initialDelay: .milliseconds(500), maxDelay: .seconds(5), multiplier: 2, jitter: 0)
        #expect((1...6).map { policy.backoff(afterAttempt: $0) }
                == [.milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(5), .seconds(5)])
    }

    @Test func jitterOnlyShortensAndSpreadsTheDelays() {
        let policy = RetryPolicy(initialDelay: .seconds(1), maxDelay: .seconds(60), multiplier: 2, jitter: 0.5)
        var generator = SplitMix64(seed: 7)
        let delays = (0..<200).map { _ in policy.delay(afterAttempt: 3, retryAfter: nil, using: &generator) }
        #expect(delays.allSatisfy { $0 >= .seconds(2) && $0 <= .seconds(4) })
        #expect(Set(delays).count > 50)
    }

    @Test func retryAfterReplacesTheBackoff() {
        let policy = RetryPolicy(initialDelay: .seconds(1), jitter: 0.5)
        var generator = SplitMix64(seed: 1)
        #expect(policy.delay(afterAttempt: 1, retryAfter: .seconds(42), using: &generator) == .seconds(42))
    }
}

/// A seeded generator, so a test of randomness gives the same numbers every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
