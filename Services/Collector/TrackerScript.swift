import CompressNIO
import Foundation
import Crypto
import NIOCore
import TributaryModels

/// The browser tracker (`Tracker/tributary.js`, embedded in the binary) as
/// `GET /tributary.js` serves it: without comment lines and indentation, gzipped once,
/// with a strong ETag of its bytes.
struct TrackerScript: Sendable {
    let plain: [UInt8]
    let gzipped: [UInt8]
    /// `"<first 16 bytes of SHA-256, hex>"`, quotes included.
    let etag: String

    init(source: [UInt8] = PackageResources.tributary_js) {
        plain = Array(Self.minified(String(decoding: source, as: UTF8.self)).utf8)
        var buffer = ByteBuffer(bytes: plain)
        gzipped = (try? buffer.compress(with: .gzip())).map { Array($0.readableBytesView) } ?? []
        etag = "\"" + Hex.encode(SHA256.hash(data: plain).prefix(16)) + "\""
    }

    /// The source without blank lines, lines that are only a `//` comment, and leading
    /// or trailing spaces (the source keeps every statement on lines of its own, and
    /// no string spans lines, so this changes nothing the script does).
    static func minified(_ source: String) -> String {
        source.split(separator: "\n", omittingEmptySubsequences: true)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("//") }
            .joined(separator: "\n")
    }
}
