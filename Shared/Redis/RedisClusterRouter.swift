import NIOPosix
import Synchronization

/// Sends commands to a Redis Cluster: each command goes to the master that owns its key's
/// slot (CRC16 of the key, or of its `{hash tag}`, modulo 16384), over one connection per
/// master. A pipeline is split by master and its replies put back in order. A `MOVED`
/// reply refreshes the slot map (`CLUSTER SLOTS`) and the command is sent again; an `ASK`
/// reply sends it once to the named node after `ASKING`. `SCRIPT` commands go to every
/// master (a script must be loaded where its keys live). Commands without a key go to any
/// master. When a node cannot be reached, the slot map is read again (a replica may have
/// taken over) and the error is thrown: the caller's retry goes to the new master.
///
/// Every queue keeps all its keys under one hash tag (``QueueKeys``), so a queue's
/// scripts run on one slot and need no cross-slot support.
final class RedisClusterRouter: Sendable {
    private let configuration: RedisConfiguration
    private let threadPool: NIOThreadPool
    private struct State {
        /// (first slot, last slot, "host:port"), sorted by first slot.
        var ranges: [(ClosedRange<Int>, String)] = []
        var nodes: [String: RedisConnection] = [:]
        var isClosed = false
    }
    private let state = Mutex(State())
    /// Redirections followed for one command before giving up.
    private let maxRedirects = 5

    init(configuration: RedisConfiguration, threadPool: NIOThreadPool) {
        self.configuration = configuration
        self.threadPool = threadPool
    }

    func close() {
        let nodes = state.withLock { s -> [RedisConnection] in
            s.isClosed = true
            defer { s.nodes = [:] }
            return Array(s.nodes.values)
        }
        for node in nodes { node.close() }
    }

    /// The connection to one node, made on first use.
    private func node(_ address: String) throws(RedisError) -> RedisConnection {
        try state.withLock { (s: inout State) throws(RedisError) -> RedisConnection in
            if s.isClosed { throw RedisError(.closed) }
            if let existing = s.nodes[address] { return existing }
            var single = configuration
            single.clusterNodes = []
            single.database = 0
            let colon = address.lastIndex(of: ":") ?? address.endIndex
            single.host = String(address[..<colon])
            single.port = Int(address[address.index(after: colon)...]) ?? 6379
            let connection = RedisConnection(configuration: single, threadPool: threadPool)
            s.nodes[address] = connection
            return connection
        }
    }

    /// Reads the slot map from the first node that answers (the seeds, then known masters).
    private func refreshSlots() async throws(RedisError) {
        let known = state.withLock { $0.ranges.map(\.1) }
        var lastError = RedisError(.connectionFailed)
        for address in configuration.clusterNodes + known {
            do {
                let reply = try await node(address).pipelineEncoded([[Array("CLUSTER".utf8), Array("SLOTS".utf8)]])[0]
                var ranges: [(ClosedRange<Int>, String)] = []
                for entry in reply.array ?? [] {
                    guard let parts = entry.array, parts.count >= 3, let first = parts[0].integer, let last = parts[1].integer,
                          let master = parts[2].array, master.count >= 2, let port = master[1].integer else { continue }
                    var host = master[0].string ?? ""
                    if host.isEmpty { host = String(address[..<(address.lastIndex(of: ":") ?? address.endIndex)]) }
                    ranges.append((Int(first)...Int(last), "\(host):\(port)"))
                }
                guard !ranges.isEmpty else { continue }
                ranges.sort { $0.0.lowerBound < $1.0.lowerBound }
                state.withLock { $0.ranges = ranges }
                return
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    private func master(ofSlot slot: Int) -> String? {
        state.withLock { s in s.ranges.first { $0.0.contains(slot) }?.1 }
    }

    private var masters: [String] { state.withLock { Array(Set($0.ranges.map(\.1))).sorted() } }

    func pipeline(_ commands: [[[UInt8]]]) async throws(RedisError) -> [RedisValue] {
        if state.withLock({ $0.ranges.isEmpty }) { try await refreshSlots() }
        var replies = [RedisValue?](repeating: nil, count: commands.count)
        var pending = Array(commands.indices)
        var round = 0
        while !pending.isEmpty {
            round += 1
            // Group by master, keeping each master's commands in their pipeline order.
            var groups: [String: [Int]] = [:]
            var order: [String] = []
            for i in pending {
                let command = commands[i]
                if Self.isBroadcast(command) {
                    var first: RedisValue?
                    for address in masters {
                        let reply = try await node(address).pipelineEncoded([command])[0]
                        if first == nil || (first.map(Self.isError) == false && Self.isError(reply)) { first = reply }
                    }
                    replies[i] = first ?? .null
                    continue
                }
                let address = Self.slot(of: command).flatMap { master(ofSlot: $0) } ?? masters.first ?? configuration.clusterNodes[0]
                if groups[address] == nil { order.append(address) }
                groups[address, default: []].append(i)
            }
            var redirected: [Int] = []
            var moved = false
            for address in order {
                let indices = groups[address]!
                let answers: [RedisValue]
                do {
                    answers = try await node(address).pipelineEncoded(indices.map { commands[$0] })
                } catch {
                    // The node is gone (failed over, removed): learn the new map for the next attempt.
                    try? await refreshSlots()
                    throw error
                }
                for (i, answer) in zip(indices, answers) {
                    if case .error(let message) = answer, message.hasPrefix("MOVED "), round <= maxRedirects {
                        moved = true
                        redirected.append(i)
                    } else if case .error(let message) = answer, message.hasPrefix("ASK "), round <= maxRedirects,
                              let target = message.split(separator: " ").last {
                        let asked = try await node(String(target)).pipelineEncoded([[Array("ASKING".utf8)], commands[i]])
                        replies[i] = asked[1]
                    } else {
                        replies[i] = answer
                    }
                }
            }
            if moved { try await refreshSlots() }
            pending = redirected
        }
        return replies.map { $0 ?? .null }
    }

    private static func isError(_ value: RedisValue) -> Bool {
        if case .error = value { return true }
        return false
    }

    /// `SCRIPT LOAD|FLUSH|EXISTS`: run on every master.
    static func isBroadcast(_ command: [[UInt8]]) -> Bool {
        command.first.map { String(decoding: $0, as: UTF8.self).uppercased() == "SCRIPT" } ?? false
    }

    /// The slot of a command's first key, or nil for a command without one.
    static func slot(of command: [[UInt8]]) -> Int? {
        guard let name = command.first.map({ String(decoding: $0, as: UTF8.self).uppercased() }) else { return nil }
        let keyless: Set<String> = ["PING", "TIME", "INFO", "CLUSTER", "DBSIZE", "FLUSHDB", "FLUSHALL", "CLIENT", "CONFIG",
                                    "ASKING", "SELECT", "AUTH", "MULTI", "EXEC", "MEMORY"]
        if keyless.contains(name) { return nil }
        if name == "EVAL" || name == "EVALSHA" {
            guard command.count > 3, let n = Int(String(decoding: command[2], as: UTF8.self)), n > 0 else { return nil }
            return slot(ofKey: command[3])
        }
        guard command.count > 1 else { return nil }
        return slot(ofKey: command[1])
    }

    /// Redis Cluster's key slot: CRC16 (XMODEM) of the key's hash tag (the text between
    /// the first `{` and the next `}`, when not empty), else of the whole key, mod 16384.
    static func slot(ofKey key: [UInt8]) -> Int {
        var part = key[...]
        if let open = key.firstIndex(of: UInt8(ascii: "{")),
           let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1 {
            part = key[(open + 1)..<close]
        }
        return Int(crc16(part) % 16384)
    }

    static func crc16(_ bytes: some Collection<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 {
                crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1
            }
        }
        return crc
    }
}
