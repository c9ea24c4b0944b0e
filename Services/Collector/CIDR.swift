import Foundation

/// An IPv4 or IPv6 address block (`10.0.0.0/8`, `::1/128`, or a bare address).
struct CIDR: Sendable, Hashable {
    let network: [UInt8]
    let prefixLength: Int

    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let address = CIDR.parse(String(parts[0])) else { return nil }
        let maximum = address.count * 8
        if parts.count == 2 {
            guard let length = Int(parts[1]), (0...maximum).contains(length) else { return nil }
            prefixLength = length
        } else {
            prefixLength = maximum
        }
        network = address
    }

    /// Whether `address` (as bytes) lies in this block.
    func contains(_ address: [UInt8]) -> Bool {
        guard address.count == network.count else { return false }
        var remaining = prefixLength
        for i in 0..<network.count where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if address[i] & mask != network[i] & mask { return false }
            remaining -= bits
        }
        return true
    }

    /// Parses an IPv4 or IPv6 address into 4 or 16 bytes (IPv4-mapped IPv6 becomes IPv4).
    static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        let trimmed = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
        if inet_pton(AF_INET6, trimmed, &v6) == 1 {
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
                return Array(bytes[12...])
            }
            return bytes
        }
        return nil
    }
}

/// Finds the client's address: the peer's, unless the peer is a trusted proxy, in which
/// case `X-Forwarded-For` is read from the right, skipping trusted proxies.
struct ClientAddressResolver: Sendable {
    let trusted: [CIDR]

    init(trustedProxies: [String]) {
        trusted = trustedProxies.compactMap(CIDR.init)
    }

    func isTrusted(_ address: String) -> Bool {
        guard let bytes = CIDR.parse(address) else { return false }
        return trusted.contains { $0.contains(bytes) }
    }

    func clientAddress(peer: String?, forwardedFor: String?) -> String? {
        guard let peer else { return nil }
        guard isTrusted(peer), let forwardedFor, !forwardedFor.isEmpty else { return peer }
        let hops = forwardedFor.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() {
            guard CIDR.parse(hop) != nil else { return peer }  // a malformed hop: trust nothing beyond it
            if !isTrusted(hop) { return hop }
        }
        return hops.first ?? peer
    }
}
