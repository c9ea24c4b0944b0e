import Foundation
import Synchronization

/// What one ``QueueConsumer`` knows it holds in its in-flight list, so that it can tell
/// entries it never heard of: a take whose script ran on the server but whose reply was
/// lost (Redis shut down or the connection broke right after) leaves items in the
/// in-flight list of a consumer that is alive and renewing its lease, where orphan
/// recovery never looks. ``QueueConsumer`` gives such entries back before its next take.
///
/// A class behind a `Mutex`, shared by every copy of the consumer value.
final class HeldEntries: Sendable {
    /// An entry's bytes, hashed by their length and their first and last 64 bytes (an
    /// array of bytes hashes byte by byte, and even as one block a raw batch of a few KB
    /// costs more to hash than the rest of a take). Entries that agree there but differ
    /// elsewhere only share a bucket: equality still compares every byte, with `memcmp`
    /// (`Array`'s own `==` compares a byte at a time, and every acknowledgement finds
    /// its entry by comparing all of a raw batch's bytes).
    private struct Key: Hashable {
        let bytes: [UInt8]
        static func == (a: Key, b: Key) -> Bool {
            guard a.bytes.count == b.bytes.count else { return false }
            return a.bytes.withUnsafeBytes { x in
                b.bytes.withUnsafeBytes { y in x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 }
            }
        }
        func hash(into hasher: inout Hasher) {
            hasher.combine(bytes.count)
            bytes.withUnsafeBytes { all in
                if all.count <= 128 {
                    hasher.combine(bytes: all)
                } else {
                    hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: all[..<64]))
                    hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: all[(all.count - 64)...]))
                }
            }
        }
    }

    private struct State {
        /// Entries held (taken and not yet acknowledged or released), with multiplicity:
        /// the same payload pushed twice is two entries.
        var counts: [Key: Int] = [:]
        /// Set when a take failed in a way that may have run on the server.
        var isUncertain = false
        /// The token of the latest take that moved items (the server keeps the same).
        var lastTake: String?
    }

    private let state = Mutex(State())

    var isUncertain: Bool { state.withLock { $0.isUncertain } }

    func markUncertain() { state.withLock { $0.isUncertain = true } }

    /// Adds a take's entries and records its token as the latest take (if it moved any).
    func add(take entries: [[UInt8]], token: String) {
        state.withLock { s in
            for e in entries { s.counts[Key(bytes: e), default: 0] += 1 }
            if !entries.isEmpty { s.lastTake = token }
        }
    }

    /// The latest take's token if `entries` are exactly what this consumer holds (with
    /// multiplicity) and no take is in doubt; otherwise `nil`. Changes nothing: the caller
    /// removes the entries once Redis has (until then a reconcile still knows them).
    func lastTake(ifHoldingExactly entries: [[UInt8]]) -> String? {
        state.withLock { s in
            guard !s.isUncertain, let token = s.lastTake, s.counts.values.reduce(0, +) == entries.count else { return nil }
            var left = s.counts
            for e in entries {
                let key = Key(bytes: e)
                guard let n = left[key] else { return nil }
                left[key] = n > 1 ? n - 1 : nil
            }
            return left.isEmpty ? token : nil
        }
    }

    func remove(_ entries: [[UInt8]]) {
        state.withLock { s in
            for e in entries {
                let key = Key(bytes: e)
                guard let n = s.counts[key] else { continue }
                s.counts[key] = n > 1 ? n - 1 : nil
            }
        }
    }

    func removeAll() { state.withLock { $0.counts = [:] } }

    /// Of the in-flight list's `entries` (in list order), the ones beyond what this
    /// consumer holds, each as often as it is in excess, in the same order. Clears the
    /// uncertainty: the caller gives them back.
    func unknown(among entries: [[UInt8]]) -> [[UInt8]] {
        state.withLock { s in
            var known = s.counts
            var excess: [[UInt8]] = []
            for e in entries {
                let key = Key(bytes: e)
                if let n = known[key], n > 0 {
                    known[key] = n - 1
                } else {
                    excess.append(e)
                }
            }
            s.isUncertain = false
            return excess
        }
    }
}
