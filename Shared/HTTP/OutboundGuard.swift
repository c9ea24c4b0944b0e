import Foundation
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Refuses outgoing requests to private, loopback, link-local and other non-public
/// addresses unless a sink allows them, checking the addresses a host name resolves to
/// (so a name cannot smuggle one in) and pinning the request to the checked addresses
/// (so a second lookup cannot change them: no DNS rebinding).
public final class OutboundGuard: Sendable {
    /// Where a request may go: the checked addresses of the URL's host.
    public struct Target: Sendable, Hashable {
        public var scheme: String
        public var host: String
        public var port: Int
        public var addresses: [String]

        /// libcurl's `CURLOPT_RESOLVE` entry that pins `host:port` to the addresses.
        public var curlResolve: String {
            "\(host):\(port):" + addresses.map { $0.contains(":") ? "[\($0)]" : $0 }.joined(separator: ",")
        }
    }

    public struct Refusal: Error, CustomStringConvertible {
        public init(description: String) { self.description = description }
        public var description: String
    }

    private let threadPool: NIOThreadPool?
    private let cacheSeconds: Double
    private let cache = Mutex<[String: (target: Target, at: ContinuousClock.Instant)]>([:])

    public init(threadPool: NIOThreadPool?, cacheSeconds: Double = 30) {
        self.threadPool = threadPool
        self.cacheSeconds = cacheSeconds
    }

    /// The URL's parts, if it is an absolute URL of one of `schemes` with a host.
    public static func parse(_ url: String, schemes: Set<String>) throws(Refusal) -> (scheme: String, host: String, port: Int) {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              let host = components.host, !host.isEmpty else {
            throw Refusal(description: "\(redacted(url)) is not an absolute URL with a host")
        }
        guard schemes.contains(scheme) else {
            throw Refusal(description: "the URL's scheme must be \(schemes.sorted().joined(separator: " or ")), not \(scheme)")
        }
        guard components.user == nil, components.password == nil else {
            throw Refusal(description: "the URL must not carry credentials; put them in the secret file")
        }
        let port = components.port ?? (scheme == "https" ? 443 : scheme == "http" ? 80 : 8125)
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return (scheme, bare, port)
    }

    /// Checks `url` and resolves its host; throws a refusal that says why it may not be used.
    public func check(_ url: String, schemes: Set<String>, allowPrivate: Bool) async throws -> Target {
        let (scheme, host, port) = try Self.parse(url, schemes: schemes)
        let key = "\(allowPrivate)|\(scheme)|\(host)|\(port)"
        if cacheSeconds > 0, let hit = cache.withLock({ $0[key] }), ContinuousClock.now - hit.at < .seconds(cacheSeconds) {
            return hit.target
        }
        let addresses: [String]
        if let threadPool {
            addresses = try await threadPool.runIfActive { try Self.resolve(host) }
        } else {
            addresses = try Self.resolve(host)
        }
        if !allowPrivate {
            for address in addresses where !Self.isPublic(address) {
                throw Refusal(description: "\(host) resolves to \(address), a private, loopback or link-local address; "
                              + "allow it with --allow-private-network")
            }
        }
        let target = Target(scheme: scheme, host: host, port: port, addresses: addresses)
        if cacheSeconds > 0 { cache.withLock { $0[key] = (target, .now) } }
        return target
    }

    /// Runs a blocking call (a socket send) on the guard's thread pool, if it has one.
    public func offload<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        guard let threadPool, let result = try? await threadPool.runIfActive(body) else { return body() }
        return result
    }

    /// The numeric addresses `host` resolves to (itself, if it is one).
    public static func resolve(_ host: String) throws(Refusal) -> [String] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &result)
        guard status == 0, let first = result else {
            throw Refusal(description: "cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(first) }
        var addresses: [String] = []
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let info = node {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(info.pointee.ai_addr, info.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0,
                           NI_NUMERICHOST) == 0 {
                let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !addresses.contains(text) { addresses.append(text) }
            }
            node = info.pointee.ai_next
        }
        guard !addresses.isEmpty else { throw Refusal(description: "\(host) has no address") }
        return addresses
    }

    /// Whether a numeric address is a public unicast one (not private, loopback,
    /// link-local, shared, multicast, reserved or unspecified).
    public static func isPublic(_ address: String) -> Bool {
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 {
            return isPublicV4(UInt32(bigEndian: v4.s_addr))
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, address.split(separator: "%").first.map(String.init) ?? address, &v6) == 1 else { return false }
        let b = withUnsafeBytes(of: v6) { Array($0) }
        if b.allSatisfy({ $0 == 0 }) { return false }                               // ::
        if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return false }        // ::1
        if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF {   // ::ffff:a.b.c.d
            return isPublicV4(UInt32(b[12]) << 24 | UInt32(b[13]) << 16 | UInt32(b[14]) << 8 | UInt32(b[15]))
        }
        if b[0..<12] == [0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0] {           // 64:ff9b::/96 (NAT64)
            return isPublicV4(UInt32(b[12]) << 24 | UInt32(b[13]) << 16 | UInt32(b[14]) << 8 | UInt32(b[15]))
        }
        if b[0] & 0xFE == 0xFC { return false }                                     // fc00::/7 unique local
        if b[0] == 0xFE && b[1] & 0xC0 == 0x80 { return false }                     // fe80::/10 link-local
        if b[0] == 0xFE && b[1] & 0xC0 == 0xC0 { return false }                     // fec0::/10 site-local
        if b[0] == 0xFF { return false }                                            // multicast
        if b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0D && b[3] == 0xB8 { return false } // documentation
        return true
    }

    private static func isPublicV4(_ a: UInt32) -> Bool {
        let blocked: [(UInt32, Int)] = [
            (0x0000_0000, 8), (0x0A00_0000, 8), (0x6440_0000, 10), (0x7F00_0000, 8), (0xA9FE_0000, 16),
            (0xAC10_0000, 12), (0xC000_0000, 24), (0xC000_0200, 24), (0xC0A8_0000, 16), (0xC612_0000, 15),
            (0xC633_6400, 24), (0xCB00_7100, 24), (0xE000_0000, 4), (0xF000_0000, 4),
        ]
        return !blocked.contains { network, bits in a >> UInt32(32 - bits) == network >> UInt32(32 - bits) }
    }

    /// The URL without its query string (which may hold a token), for messages.
    public static func redacted(_ url: String) -> String {
        String(url.prefix { $0 != "?" && $0 != "#" })
    }
}
