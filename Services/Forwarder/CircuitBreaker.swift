import Synchronization

/// A sink's circuit breaker (per forwarder instance): after `threshold` consecutive failed
/// requests it opens and the sink is paused (its queue and retries wait); when the pause
/// ends, one request probes the sink; success closes the breaker, failure opens it again
/// for twice as long (up to a maximum). A 429 with Retry-After pauses the sink that long.
final class CircuitBreaker: Sendable {
    enum State: String, Sendable { case closed, open, halfOpen = "half-open" }

    private struct Inner {
        var failures = 0
        var openUntil: ContinuousClock.Instant?
        var openFor: Double
        var probing = false
    }

    private let threshold: Int
    private let baseSeconds: Double
    private let maxSeconds: Double
    private let inner: Mutex<Inner>

    init(threshold: Int, openSeconds: Double, maxOpenSeconds: Double) {
        self.threshold = threshold
        self.baseSeconds = openSeconds
        self.maxSeconds = max(maxOpenSeconds, openSeconds)
        inner = Mutex(Inner(openFor: openSeconds))
    }

    var state: State {
        inner.withLock { i in
            guard let until = i.openUntil else { return .closed }
            return ContinuousClock.now < until ? .open : .halfOpen
        }
    }

    /// Asks to send a request: `nil` means wait this long and ask again; otherwise the
    /// request may go (`probe` is true when it is the one request testing an open sink).
    func permit() -> (probe: Bool, wait: Duration?) {
        inner.withLock { i in
            guard let until = i.openUntil else { return (false, nil) }
            let now = ContinuousClock.now
            if now < until { return (false, min(until - now, .milliseconds(500))) }
            if i.probing { return (false, .milliseconds(100)) }
            i.probing = true
            return (true, nil)
        }
    }

    /// Waits until a request may go; returns whether it is a probe, or `nil` if the task
    /// should stop (shutdown or `stopped`).
    func acquire(stopped: @Sendable () -> Bool) async -> Bool? {
        while !stopped() && !Task.isCancelled {
            let (probe, wait) = permit()
            guard let wait else { return probe }
            try? await Task.sleep(for: wait)
        }
        return nil
    }

    /// Records a request that went through.
    func succeeded() {
        inner.withLock { i in
            i = Inner(openFor: baseSeconds)
        }
    }

    /// Records a failed request (transient); `pause` is a sink-requested pause (Retry-After).
    func failed(pause: Double? = nil) {
        inner.withLock { i in
            i.failures += 1
            let wasProbe = i.probing
            i.probing = false
            if let pause, pause > 0 {
                i.openUntil = .now + .milliseconds(Int64(min(pause, 86_400) * 1000))
                return
            }
            if wasProbe {
                i.openFor = min(i.openFor * 2, maxSeconds)
                i.openUntil = .now + .milliseconds(Int64(i.openFor * 1000))
            } else if i.failures >= threshold && i.openUntil == nil {
                i.openUntil = .now + .milliseconds(Int64(i.openFor * 1000))
            } else if i.failures >= threshold, let until = i.openUntil, until < .now {
                i.openUntil = .now + .milliseconds(Int64(i.openFor * 1000))
            }
        }
    }

    /// Gives back a probe permit that was not used (nothing was sent).
    func release() {
        inner.withLock { $0.probing = false }
    }

    /// Records a request whose answer says nothing about the sink's health (a permanent
    /// refusal of the events themselves): ends a probe without changing the state.
    func neutral() {
        inner.withLock { i in
            if i.probing {
                i = Inner(openFor: baseSeconds)
            }
        }
    }
}
