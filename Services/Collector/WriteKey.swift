import Crypto
import Foundation
import TributaryModels

/// Site keys: write keys (`trk_`) send events, read keys (`trr_`) read statistics; each is
/// the prefix and 32 random hex digits (128 bits). Only a SHA-256 hash is stored; the key
/// itself is printed once, when it is created.
enum WriteKey {
    /// What a key opens: the column `collector.write_keys.kind`.
    enum Kind: String, Sendable {
        case write, read
        var prefix: String { self == .write ? "trk_" : "trr_" }
    }

    /// A new random key.
    static func generate(_ kind: Kind = .write) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return kind.prefix + Hex.encode(bytes)
    }

    /// The stored form: lower-case hex SHA-256 of the key's UTF-8 bytes.
    static func hash(_ key: String) -> String {
        Hex.encode(SHA256.hash(data: Array(key.utf8)))
    }

    /// The part shown in listings to tell keys apart (`trk_1a2b3c4d`).
    static func prefix(_ key: String) -> String {
        String(key.prefix(12))
    }
}
