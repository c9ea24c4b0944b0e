import NIOPosix

/// A started `NIOThreadPool` for short-lived commands, stopped with ``stop()``.
public final class NIOThreadPoolBox: Sendable {
    public let pool: NIOThreadPool

    public init(threads: Int) {
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
    }

    public func stop() {
        try? pool.syncShutdownGracefully()
    }
}
