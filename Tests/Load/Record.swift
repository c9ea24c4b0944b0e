import Foundation

/// The generator's record of a run (JSON lines), read by `tributary-load verify`:
///
/// * `{"kind":"run", "startedAt", "collector", "sites":[{"siteId"}], "seed", "sink"?}` first;
/// * `{"kind":"batch", "site", "batch", "acked", "attempts", "events":[RecordedEvent]}` per batch sent,
///   acknowledged (`acked`: the collector answered 2xx; `batch` is its id) or given up;
/// * `{"kind":"end", "finishedAt", "seconds", "batches", "events", "unacked"}` last.
struct RecordedEvent: Codable, Sendable, Hashable {
    /// What each stage should make of the event.
    enum Expect: String, Codable, Sendable {
        /// Valid and sent for the first time: stored once, counted, delivered.
        case stored
        /// A resend of an acknowledged messageId: deduplicated, counted nowhere again.
        case duplicate
        /// Invalid: rejected with a reason.
        case invalid
    }

    /// messageId.
    var m: String
    /// type: page, track, identify, metric.
    var t: String
    var x: Expect
    /// Position in its batch.
    var pos: Int
    /// The visitor's index in its site's pool.
    var v: Int
    /// Event time, Unix ms.
    var at: Int64
    /// Path (page) or event name (track).
    var p: String?
}

struct RecordedBatch: Codable, Sendable {
    var kind = "batch"
    var site: Int64
    var batch: String?
    var acked: Bool
    var attempts: Int
    var events: [RecordedEvent]
}

struct RunHeader: Codable, Sendable {
    var kind = "run"
    var startedAt: Date
    var collector: String
    var sites: [Int64]
    var seed: UInt64
    var visitorsPerSite: Int
}

struct RunFooter: Codable, Sendable {
    var kind = "end"
    var finishedAt: Date
    var seconds: Double
    var batches: Int
    var events: Int
    var unacked: Int
}

/// Appends lines to the record file (one writer).
final class RecordWriter: @unchecked Sendable {
    private let handle: FileHandle
    private let lock = NSLock()
    private let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .iso8601
        return e
    }()

    init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw LoadError("cannot create the record file \(path)")
        }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    }

    func write<T: Encodable>(_ value: T) throws {
        var data = try encoder.encode(value)
        data.append(0x0A)
        lock.lock()
        defer { lock.unlock() }
        try handle.write(contentsOf: data)
    }

    func close() throws { try handle.close() }
}

/// Reads a record file.
struct RecordFile {
    var header: RunHeader
    var batches: [RecordedBatch]
    var footer: RunFooter?

    init(path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw LoadError("cannot read \(path)") }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        var header: RunHeader?
        var batches: [RecordedBatch] = []
        var footer: RunFooter?
        for (n, line) in text.split(separator: "\n").enumerated() {
            let data = Data(line.utf8)
            guard let kind = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["kind"] as? String else {
                throw LoadError("\(path):\(n + 1) is not a record line")
            }
            switch kind {
            case "run": header = try decoder.decode(RunHeader.self, from: data)
            case "batch": batches.append(try decoder.decode(RecordedBatch.self, from: data))
            case "end": footer = try decoder.decode(RunFooter.self, from: data)
            default: throw LoadError("\(path):\(n + 1) has an unknown kind \(kind)")
            }
        }
        guard let header else { throw LoadError("\(path) has no run header") }
        self.header = header
        self.batches = batches
        self.footer = footer
    }
}

struct LoadError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
