import Foundation

/// The consumer side of a ``ReliableQueue``: takes items into its own in-flight list,
/// acknowledges them after their effects commit, and keeps a lease so that, if it dies,
/// any other consumer's ``ReliableQueue/recoverOrphans(maxConsumers:)`` gives its items back.
public struct QueueConsumer: Sendable {
    /// Limits of a consumer.
    public struct Configuration: Sendable, Hashable {
        /// The most items taken from one site per turn (the round-robin quantum).
        public var maxItemsPerTurn: Int
        /// The most sites whose turns one take gathers (each site still gets at most
        /// ``maxItemsPerTurn`` items, in ring order). 1 hands a handler one site's items at
        /// a time; more lets a handler share its fixed costs (a transaction, round trips)
        /// among several small sites' items.
        public var maxSitesPerTake: Int
        /// How long a consumer's lease lasts without renewal, in milliseconds. A consumer
        /// silent for longer is presumed dead and its in-flight items are recovered.
        public var leaseMs: Int
        /// How long an idle consumer blocks waiting for work, in seconds (keep short so
        /// shutdown is prompt; must be below the blocking connection's socket timeout).
        public var idleWaitSeconds: Double

        public init(maxItemsPerTurn: Int = 10, maxSitesPerTake: Int = 1, leaseMs: Int = 15_000, idleWaitSeconds: Double = 1) {
            self.maxItemsPerTurn = maxItemsPerTurn
            self.maxSitesPerTake = maxSitesPerTake
            self.leaseMs = leaseMs
            self.idleWaitSeconds = idleWaitSeconds
        }
    }

    public let queue: ReliableQueue
    /// This consumer's id: unique per process and queue.
    public let consumerID: String
    public let configuration: Configuration
    /// A connection reserved for blocking waits (`BRPOP` on the wake list).
    private let blockingConnection: RedisConnection
    /// The entries this consumer knows it holds (shared by copies of this value).
    private let held = HeldEntries()

    public init(queue: ReliableQueue, consumerID: String, blockingConnection: RedisConnection,
                configuration: Configuration = Configuration()) {
        precondition(ReliableQueue.isValidSite(consumerID), "consumer ids cannot contain newlines or braces")
        self.queue = queue
        self.consumerID = consumerID
        self.blockingConnection = blockingConnection
        self.configuration = configuration
    }

    /// A process-unique consumer id: `<host>-<pid>-<random>`.
    public static func makeID(prefix: String? = nil) -> String {
        let host = ProcessInfo.processInfo.hostName.replacingOccurrences(of: "{", with: "")
            .replacingOccurrences(of: "}", with: "")
        let random = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        return [prefix, host, String(ProcessInfo.processInfo.processIdentifier), random]
            .compactMap { $0 }.joined(separator: "-")
    }

    /// Renews this consumer's lease. Call it before the first take and then at least
    /// every third of ``Configuration/leaseMs``.
    public func renewLease() async throws(RedisError) {
        _ = try await QueueScripts.renew.run(on: queue.connection, keys: [queue.keys.consumers],
                                             arguments: [consumerID, configuration.leaseMs])
    }

    /// Takes up to ``Configuration/maxItemsPerTurn`` items of the next site in turn (and
    /// of the sites after it, up to ``Configuration/maxSitesPerTake`` sites), without
    /// waiting. Items come grouped by site, each site's oldest first. Returns an empty
    /// array when the queue is empty.
    ///
    /// If an earlier take failed after it may have run on the server (its reply lost to a
    /// broken connection or a Redis restart), the entries it moved into this consumer's
    /// in-flight list are given back to the queue first (``reconcile()``), so nothing
    /// stays there unknown to a live consumer. Calls of `take` on one consumer must not
    /// overlap (each worker takes from one loop).
    public func take() async throws(RedisError) -> [QueueItem] {
        if held.isUncertain { try await reconcile() }
        let reply: RedisValue
        let token = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        do {
            reply = try await QueueScripts.pop.run(
                on: queue.connection,
                keys: [queue.keys.ring, queue.keys.sites, queue.keys.inflight(consumerID), queue.keys.depth,
                       queue.keys.lastTake(consumerID)],
                arguments: [queue.keys.sitePrefix, configuration.maxItemsPerTurn, max(configuration.maxSitesPerTake, 1),
                            token, Self.lastTakeLifetimeMs])
        } catch {
            // An error reply means the script did not run; anything else may hide one that did.
            if error.code != .serverError { held.markUncertain() }
            throw error
        }
        let items = Self.items(fromPop: reply.array ?? [])
        held.add(take: items.map(\.entry), token: token)
        return items
    }

    /// How long Redis keeps a consumer's last-take token after its latest take (a dead
    /// consumer's goes with its recovery, or then). An expired token only makes the next
    /// acknowledgement remove its items one by one.
    static let lastTakeLifetimeMs = 3_600_000

    /// The items of a `pop` reply: `{site, n, item × n, …}`.
    static func items(fromPop values: [RedisValue]) -> [QueueItem] {
        var items: [QueueItem] = []
        var i = 0
        while i + 1 < values.count, let site = values[i].string, let n = values[i + 1].integer {
            let end = min(i + 2 + Int(n), values.count)
            for value in values[(i + 2)..<end] {
                if let payload = value.bytes { items.append(QueueItem(site: site, payload: payload)) }
            }
            i = end
        }
        return items
    }

    /// Gives back every entry of this consumer's in-flight list that it does not know it
    /// holds (left there by a take whose reply was lost). Returns how many went back.
    @discardableResult
    public func reconcile() async throws(RedisError) -> Int {
        let entries = (try await queue.connection.send("LRANGE", queue.keys.inflight(consumerID), 0, -1).array ?? [])
            .compactMap(\.bytes)
        let unknown = held.unknown(among: entries)
        guard !unknown.isEmpty else { return 0 }
        do {
            try await releaseEntries(unknown)
        } catch {
            held.markUncertain()
            throw error
        }
        return unknown.count
    }

    /// Takes items, waiting up to ``Configuration/idleWaitSeconds`` for some to arrive.
    /// Returns an empty array if none came.
    public func next() async throws(RedisError) -> [QueueItem] {
        let items = try await take()
        if !items.isEmpty { return items }
        let timeout = String(format: "%.3f", configuration.idleWaitSeconds)
        _ = try await blockingConnection.send("BRPOP", queue.keys.wake, timeout)
        return try await take()
    }

    /// Removes an item from the in-flight list: call only after its effects committed.
    public func ack(_ item: QueueItem) async throws(RedisError) {
        _ = try await queue.connection.send("LREM", queue.keys.inflight(consumerID), 1, item.entry)
        held.remove([item.entry])
    }

    /// Removes several items from the in-flight list in one round trip.
    ///
    /// When they are all this consumer holds (the usual case: a take's items, acknowledged
    /// together), with no take in doubt, the in-flight list is deleted whole if the
    /// consumer's last take on the server is still the one it knows and the list has that
    /// many entries (``QueueScripts/ackAll`` says why those entries are then these items).
    /// That sends a count and a token instead of every item's bytes (`LREM` sent each raw
    /// batch to Redis again, which compared it and appended it to its file). Otherwise each
    /// item is removed by value.
    public func ack(_ items: [QueueItem]) async throws(RedisError) {
        guard !items.isEmpty else { return }
        let entries = items.map(\.entry)
        if let token = held.lastTake(ifHoldingExactly: entries) {
            let deleted = try await QueueScripts.ackAll.run(
                on: queue.connection, keys: [queue.keys.inflight(consumerID), queue.keys.lastTake(consumerID)],
                arguments: [entries.count, token])
            if deleted.integer == 1 {
                held.remove(entries)
                return
            }
        }
        _ = try await queue.connection.pipeline(entries.map { ["LREM", queue.keys.inflight(consumerID), 1, $0] })
        held.remove(entries)
    }

    /// Gives items back unprocessed, to the front of their sites' lists (graceful shutdown),
    /// so that the oldest of them (the first taken) is taken first again.
    public func release(_ items: [QueueItem]) async throws(RedisError) {
        guard !items.isEmpty else { return }
        try await releaseEntries(items.reversed().map(\.entry))
        held.remove(items.map(\.entry))
    }

    /// Moves `entries` from the in-flight list back to the pop end of their sites' lists,
    /// one after the other: give them newest first (in-flight list order).
    private func releaseEntries(_ entries: [[UInt8]]) async throws(RedisError) {
        var arguments: [any RedisArgumentConvertible] = [queue.keys.sitePrefix]
        arguments.append(contentsOf: entries)
        _ = try await QueueScripts.release.run(
            on: queue.connection,
            keys: [queue.keys.inflight(consumerID), queue.keys.ring, queue.keys.sites, queue.keys.wake,
                   queue.keys.depth],
            arguments: arguments)
    }

    /// Items this consumer holds in flight, oldest first (e.g. left over from a crash of a
    /// process that reused this id).
    public func inflightItems() async throws(RedisError) -> [QueueItem] {
        let entries = try await queue.connection.send("LRANGE", queue.keys.inflight(consumerID), 0, -1).array ?? []
        return entries.reversed().compactMap { value in
            guard let bytes = value.bytes, let nl = bytes.firstIndex(of: 0x0A) else { return nil }
            return QueueItem(site: String(decoding: bytes[..<nl], as: UTF8.self),
                             payload: Array(bytes[(nl + 1)...]))
        }
    }

    /// Ends this consumer's lease: whatever it still holds goes back to the queue first.
    public func retire() async throws(RedisError) {
        try await release(try await inflightItems())
        held.removeAll()
        _ = try await queue.connection.send("ZREM", queue.keys.consumers, consumerID)
    }
}
