import CHiredis
import NIOPosix
import Synchronization

/// One connection to Redis over hiredis's blocking API.
///
/// Thread safety: the hiredis context is a C pointer owned by this object only. It lives
/// inside a `Mutex`, is touched only while the mutex is held, and only on a thread of the
/// injected `NIOThreadPool` (never on Swift's cooperative pool), so the class is `Sendable`
/// even though the pointer is not. Commands from several tasks are serialised.
///
/// After an I/O error hiredis's context is dead: it is freed, and the next command
/// reconnects, waiting a backoff that doubles per consecutive failure (up to
/// ``RedisConfiguration/reconnectBackoffMaxMs``). Arguments always go as binary-safe
/// strings, formatted here in the protocol's own form (`redisAppendFormattedCommand`).
public final class RedisConnection: Sendable {
    struct State {
        var context: UnsafeMutablePointer<redisContext>?
        var consecutiveFailures = 0
        var retryAfter: ContinuousClock.Instant?
        var isClosed = false
    }

    /// Where this connection connects to.
    public let configuration: RedisConfiguration
    private let threadPool: NIOThreadPool
    private let state: Mutex<State>
    /// Set when the configuration names cluster nodes: commands are routed by key slot.
    private let cluster: RedisClusterRouter?

    /// Creates a connection; it connects lazily on the first command.
    /// - Parameters:
    ///   - configuration: Where and how to connect.
    ///   - threadPool: A started pool the blocking calls run on; give it one thread per
    ///     connection that should be able to block at the same time.
    public init(configuration: RedisConfiguration, threadPool: NIOThreadPool) {
        self.configuration = configuration
        self.threadPool = threadPool
        self.state = Mutex(State())
        cluster = configuration.clusterNodes.isEmpty ? nil : RedisClusterRouter(configuration: configuration, threadPool: threadPool)
    }

    deinit {
        state.withLock { s in
            if let ctx = s.context { redisFree(ctx) }
            s.context = nil
        }
    }

    /// Sends one command and returns its reply; an error reply is thrown as
    /// ``RedisError/Code/serverError``.
    public func send(_ arguments: [any RedisArgumentConvertible]) async throws(RedisError) -> RedisValue {
        let reply = try await pipeline([arguments])[0]
        if case .error(let prefix) = reply { throw RedisError(.serverError, serverErrorPrefix: prefix) }
        return reply
    }

    /// Sends one command given as words, e.g. `send("LPUSH", key, value)`.
    public func send(_ arguments: any RedisArgumentConvertible...) async throws(RedisError) -> RedisValue {
        try await send(arguments)
    }

    /// Sends several commands in one round trip (pipelining) and returns their replies in
    /// order. Error replies are returned as ``RedisValue/error(prefix:)``, not thrown.
    public func pipeline(_ commands: [[any RedisArgumentConvertible]]) async throws(RedisError) -> [RedisValue] {
        precondition(!commands.isEmpty, "a pipeline needs at least one command")
        let encoded = commands.map { $0.map(\.redisArgument) }
        if let cluster { return try await cluster.pipeline(encoded) }
        return try await pipelineEncoded(encoded)
    }

    /// ``pipeline(_:)`` of commands already encoded, on this one server.
    func pipelineEncoded(_ encoded: [[[UInt8]]]) async throws(RedisError) -> [RedisValue] {
        if let until = state.withLock({ $0.retryAfter }), until > .now {
            do { try await Task.sleep(until: until) } catch { throw RedisError(.closed) }
        }
        do {
            return try await threadPool.runIfActive { [self] in try self.runBlocking(encoded) }
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError(.closed)
        }
    }

    /// Closes the connection (idempotent). Later commands throw ``RedisError/Code/closed``.
    public func close() {
        cluster?.close()
        state.withLock { s in
            s.isClosed = true
            if let ctx = s.context { redisFree(ctx) }
            s.context = nil
        }
    }

    // MARK: - Blocking part (runs on the thread pool)

    private func runBlocking(_ commands: [[[UInt8]]]) throws(RedisError) -> [RedisValue] {
        try state.withLock { (s: inout State) throws(RedisError) -> [RedisValue] in
            if s.isClosed { throw RedisError(.closed) }
            if s.context == nil {
                do throws(RedisError) {
                    s.context = try Self.connect(configuration)
                } catch {
                    Self.recordFailure(&s, configuration)
                    throw error
                }
            }
            let ctx = s.context!
            var replies: [RedisValue] = []
            replies.reserveCapacity(commands.count)
            var ok = Self.append(commands, to: ctx)
            for _ in commands where ok {
                var raw: UnsafeMutableRawPointer?
                if redisGetReply(ctx, &raw) == REDIS_OK, let raw {
                    replies.append(Self.convert(raw))
                    freeReplyObject(raw)
                } else {
                    ok = false
                }
            }
            guard ok, tributary_redis_err(ctx) == 0 else {
                redisFree(ctx)
                s.context = nil
                Self.recordFailure(&s, configuration)
                throw RedisError(.connectionLost)
            }
            s.consecutiveFailures = 0
            s.retryAfter = nil
            return replies
        }
    }

    private static func recordFailure(_ s: inout State, _ configuration: RedisConfiguration) {
        s.consecutiveFailures += 1
        let exponent = min(s.consecutiveFailures - 1, 16)
        let delay = min(configuration.reconnectBackoffMs << exponent, configuration.reconnectBackoffMaxMs)
        s.retryAfter = .now + .milliseconds(delay)
    }

    private static func connect(_ configuration: RedisConfiguration) throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        let timeout = tributary_timeval_ms(configuration.connectTimeoutMs)
        let context: UnsafeMutablePointer<redisContext>?
        if let path = configuration.unixSocketPath {
            context = redisConnectUnixWithTimeout(path, timeout)
        } else {
            context = redisConnectWithTimeout(configuration.host, Int32(configuration.port), timeout)
        }
        guard let context else { throw RedisError(.connectionFailed) }
        guard tributary_redis_err(context) == 0,
              redisSetTimeout(context, tributary_timeval_ms(configuration.socketTimeoutMs)) == REDIS_OK
        else {
            redisFree(context)
            throw RedisError(.connectionFailed)
        }
        var setup: [[[UInt8]]] = []
        if let password = configuration.password { setup.append([Array("AUTH".utf8), Array(password.utf8)]) }
        if configuration.database != 0 {
            setup.append([Array("SELECT".utf8), Array(String(configuration.database).utf8)])
        }
        for command in setup {
            var raw: UnsafeMutableRawPointer?
            guard append([command], to: context), redisGetReply(context, &raw) == REDIS_OK, let raw else {
                redisFree(context)
                throw RedisError(.connectionFailed)
            }
            let reply = convert(raw)
            freeReplyObject(raw)
            if case .error = reply {
                redisFree(context)
                throw RedisError(.connectionFailed)
            }
        }
        return context
    }

    /// Appends the commands to the context's output buffer, written in the protocol's own
    /// form (RESP: `*<n>` then `$<length>` and the bytes of each argument) into one buffer.
    /// The arguments are copied once here and once into hiredis's buffer; through
    /// `redisAppendCommandArgv` they were copied three times (flat, formatted, appended),
    /// which mattered for pushes and acknowledgements of hundreds of kilobytes.
    private static func append(_ commands: [[[UInt8]]], to ctx: UnsafeMutablePointer<redisContext>) -> Bool {
        var size = 0
        for command in commands {
            size += 24
            for argument in command { size += argument.count + 24 }
        }
        var out: [UInt8] = []
        out.reserveCapacity(size)
        func header(_ marker: UInt8, _ count: Int) {
            out.append(marker)
            out.append(contentsOf: String(count).utf8)
            out.append(13)
            out.append(10)
        }
        for command in commands {
            header(42, command.count)
            for argument in command {
                header(36, argument.count)
                out.append(contentsOf: argument)
                out.append(13)
                out.append(10)
            }
        }
        return out.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { redisAppendFormattedCommand(ctx, $0.baseAddress, $0.count) == REDIS_OK }
        }
    }

    /// Copies a hiredis reply into a Swift value (the caller frees the reply).
    private static func convert(_ raw: UnsafeMutableRawPointer) -> RedisValue {
        let reply = raw.assumingMemoryBound(to: redisReply.self).pointee
        func text() -> [UInt8] {
            guard let str = reply.str, reply.len > 0 else { return [] }
            return Array(UnsafeRawBufferPointer(start: str, count: reply.len))
        }
        switch reply.type {
        case REDIS_REPLY_STRING: return .bulk(text())
        case REDIS_REPLY_STATUS: return .status(String(decoding: text(), as: UTF8.self))
        case REDIS_REPLY_INTEGER: return .integer(Int64(reply.integer))
        case REDIS_REPLY_NIL: return .null
        case REDIS_REPLY_ERROR:
            let message = String(decoding: text(), as: UTF8.self)
            let prefix = String(message.prefix { $0 != " " })
            // A cluster redirection keeps its slot and address ("MOVED 3999 10.0.0.2:6379"): the router needs them.
            return .error(prefix: prefix == "MOVED" || prefix == "ASK" ? message : prefix)
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(reply.elements)
            for i in 0..<reply.elements {
                if let element = reply.element[i] { elements.append(convert(UnsafeMutableRawPointer(element))) }
            }
            return .array(elements)
        default:
            return .null
        }
    }
}
