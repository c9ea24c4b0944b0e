import Crypto
import Foundation

/// Write keys: `trk_` and 32 random hex digits (128 bits). Only a SHA-256 hash is
/// stored; the key itself is printed once, when it is created.
enum WriteKey {
    /// A new random key.
    static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return "trk_" + bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// The stored form: lower-case hex SHA-256 of the key's UTF-8 bytes.
    static func hash(_ key: String) -> String {
        SHA256.hash(data: Array(key.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The part shown in listings to tell keys apart (`trk_1a2b3c4d`).
    static func prefix(_ key: String) -> String {
        String(key.prefix(12))
    }
}
