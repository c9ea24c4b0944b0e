/// A reliable, fair work queue over Redis lists: the producer side and the gauges.
///
/// Items are grouped per site; consumers (``QueueConsumer``) take sites in turn from a
/// ring (deficit round robin with a quantum of ``QueueConsumer/Configuration/maxItemsPerTurn``
/// items), so a site with a huge backlog delays only itself. Delivery is at-least-once:
/// a taken item sits in the consumer's in-flight list until acknowledged, and the
/// in-flight lists of consumers whose lease expired are recovered. Key layout:
/// ``QueueKeys``; message formats: docs/queues.md.
public struct ReliableQueue: Sendable {
    /// The queue's keys.
    public let keys: QueueKeys
    /// The connection used for pushes and gauges (not for blocking waits).
    public let connection: RedisConnection
    /// How many wake tokens to keep (a bound on the wake list's length).
    public let wakeTokenLimit: Int

    /// - Parameters:
    ///   - name: The queue's name (`hydrate`, `aggregate`, `forward:<sinkId>`).
    ///   - connection: A non-blocking connection for pushes and gauges.
    public init(name: String, connection: RedisConnection, wakeTokenLimit: Int = 16) {
        self.keys = QueueKeys(name: name)
        self.connection = connection
        self.wakeTokenLimit = wakeTokenLimit
    }

    /// Appends one item to `site`'s list.
    public func push(_ payload: [UInt8], site: String) async throws(RedisError) {
        try await push([QueueItem(site: site, payload: payload)])
    }

    /// Appends items atomically (all or none), each to its site's list, in order.
    public func push(_ items: [QueueItem]) async throws(RedisError) {
        guard !items.isEmpty else { return }
        let call = pushCall(items)
        _ = try await QueueScripts.push.run(on: connection, keys: call.keys, arguments: call.arguments)
    }

    /// Pushes to several queues in one round trip: each queue's items atomically (all or
    /// none), the queues one after the other, over the first queue's connection (all the
    /// queues must live on the same server). If it throws, some queues may hold their items
    /// and others not: push again (every consumer is idempotent).
    public static func push(_ pushes: [(queue: ReliableQueue, items: [QueueItem])]) async throws(RedisError) {
        let nonEmpty = pushes.filter { !$0.items.isEmpty }
        guard let connection = nonEmpty.first?.queue.connection else { return }
        _ = try await QueueScripts.push.run(on: connection, calls: nonEmpty.map { $0.queue.pushCall($0.items) })
    }

    private func pushCall(_ items: [QueueItem]) -> RedisScript.Call {
        var arguments: [any RedisArgumentConvertible] = [keys.sitePrefix, wakeTokenLimit]
        arguments.reserveCapacity(2 + 2 * items.count)
        for item in items {
            precondition(Self.isValidSite(item.site), "a site id must be non-empty, without newlines or braces")
            arguments.append(item.site)
            arguments.append(item.payload)
        }
        return RedisScript.Call(keys: [keys.ring, keys.sites, keys.wake, keys.depth], arguments: arguments)
    }

    /// The number of items waiting for `site` (not counting in-flight ones).
    public func depth(site: String) async throws(RedisError) -> Int {
        Int(try await connection.send("LLEN", keys.site(site)).integer ?? 0)
    }

    /// The items waiting in all sites' lists (not counting in-flight ones), from the
    /// counter the queue's scripts keep: one `GET`, however many sites there are.
    public func totalDepth() async throws(RedisError) -> Int {
        Int(try await connection.send("GET", keys.depth).integer ?? 0)
    }

    /// The waiting items per site, for every site that has any.
    public func depths() async throws(RedisError) -> [String: Int] {
        let sites = try await connection.send("SMEMBERS", keys.sites).array ?? []
        let names = sites.compactMap(\.string)
        guard !names.isEmpty else { return [:] }
        let replies = try await connection.pipeline(names.map { ["LLEN", keys.site($0)] })
        var result: [String: Int] = [:]
        for (name, reply) in zip(names, replies) { result[name] = Int(reply.integer ?? 0) }
        return result
    }

    /// The consumers that hold a lease (alive or not yet recovered), with their items in flight.
    public func inflight() async throws(RedisError) -> [String: Int] {
        let consumers = (try await connection.send("ZRANGE", keys.consumers, 0, -1).array ?? []).compactMap(\.string)
        guard !consumers.isEmpty else { return [:] }
        let replies = try await connection.pipeline(consumers.map { ["LLEN", keys.inflight($0)] })
        var result: [String: Int] = [:]
        for (name, reply) in zip(consumers, replies) { result[name] = Int(reply.integer ?? 0) }
        return result
    }

    /// Moves the in-flight items of every consumer whose lease expired back to the
    /// front of their sites' lists. Any consumer may call this; it is idempotent.
    /// - Returns: The number of items recovered.
    @discardableResult
    public func recoverOrphans(maxConsumers: Int = 100) async throws(RedisError) -> Int {
        let reply = try await QueueScripts.recover.run(
            on: connection, keys: [keys.consumers, keys.ring, keys.sites, keys.wake, keys.depth],
            arguments: [keys.inflightPrefix, keys.sitePrefix, maxConsumers, keys.lastTakePrefix])
        return Int(reply.integer ?? 0)
    }

    /// Whether `site` can name a site in a queue: non-empty, no newline, no braces.
    public static func isValidSite(_ site: String) -> Bool {
        !site.isEmpty && !site.contains("\n") && !site.contains("{") && !site.contains("}")
    }
}

extension ReliableQueue {
    /// Deletes every waiting item of the queue (all sites), for a queue that is going away
    /// (a removed sink). Items in consumers' in-flight lists are left to them.
    public func purge() async throws(RedisError) {
        let sites = (try await connection.send("SMEMBERS", keys.sites).array ?? []).compactMap(\.string)
        var commands: [[any RedisArgumentConvertible]] = sites.map { ["DEL", keys.site($0)] }
        commands.append(["DEL", keys.ring, keys.sites, keys.depth, keys.wake])
        _ = try await connection.pipeline(commands)
    }
}
