import Foundation
import NIOPosix
import Synchronization

/// The local spool the collector writes acknowledged batches to while PostgreSQL is
/// unreachable: append-only segment files of checksummed records (``SpoolFormat``),
/// fsynced before the 2xx. ``SpoolDrainer`` moves them into PostgreSQL later, in order,
/// idempotently by batch id, and deletes each segment once it is fully drained.
final class Spool: Sendable {
    enum Failure: Error { case full, io(Int32) }

    private struct State {
        var fd: Int32 = -1
        var segment: Int = 0
        var currentBytes = 0
        var totalBytes = 0
    }

    let directory: String
    let maximumBytes: Int
    private let threadPool: NIOThreadPool
    private let state = Mutex(State())

    /// Opens (creating if needed) the spool in `directory`.
    init(directory: String, maximumBytes: Int, threadPool: NIOThreadPool) throws {
        self.directory = directory
        self.maximumBytes = maximumBytes
        self.threadPool = threadPool
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        guard access(directory, W_OK) == 0 else { throw Failure.io(errno) }
        let segments = Self.segmentNumbers(in: directory)
        let total = segments.reduce(0) { $0 + Self.fileSize(Self.path(directory, $1)) }
        state.withLock {
            $0.segment = (segments.last ?? 0) + 1
            $0.totalBytes = total
        }
    }

    deinit {
        state.withLock { if $0.fd >= 0 { close($0.fd) } }
    }

    /// Bytes in the spool (all segments).
    var sizeBytes: Int { state.withLock { $0.totalBytes } }
    var isEmpty: Bool { sizeBytes == 0 }

    /// Appends the records and fsyncs them; after this returns they survive a crash.
    /// - Throws: ``Failure/full`` if they would push the spool past its limit.
    func append(_ records: [RawBatchRecord]) async throws {
        var data: [UInt8] = []
        for record in records { data += try SpoolFormat.encode(record) }
        let bytes = data
        try await threadPool.runIfActive { [self] in try self.appendBlocking(bytes) }
    }

    private func appendBlocking(_ data: [UInt8]) throws {
        try state.withLock { s in
            guard s.totalBytes + data.count <= maximumBytes else { throw Failure.full }
            if s.fd < 0 {
                let path = Self.path(directory, s.segment)
                let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
                guard fd >= 0 else { throw Failure.io(errno) }
                s.fd = fd
                s.currentBytes = Self.fileSize(path)
                Self.syncDirectory(directory)
            }
            var written = 0
            while written < data.count {
                let n = data[written...].withUnsafeBytes { write(s.fd, $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    // A partial record may be on disk: it fails its checksum when read.
                    throw Failure.io(errno)
                }
                written += n
            }
            guard fsync(s.fd) == 0 else { throw Failure.io(errno) }
            s.currentBytes += data.count
            s.totalBytes += data.count
        }
    }

    /// Closes the segment being written (new appends start a new one) and returns every
    /// closed segment's number, oldest first.
    func sealSegments() -> [Int] {
        state.withLock { s in
            if s.fd >= 0 {
                close(s.fd)
                s.fd = -1
                s.segment += 1
                s.currentBytes = 0
            }
            return Self.segmentNumbers(in: directory).filter { $0 < s.segment }
        }
    }

    /// Reads a closed segment's records, in order (file I/O on the thread pool).
    func records(inSegment number: Int) async throws -> (records: [RawBatchRecord], skipped: Int) {
        let path = Self.path(directory, number)
        let data = try await threadPool.runIfActive { () throws -> [UInt8] in
            guard let data = FileManager.default.contents(atPath: path) else { throw Failure.io(errno) }
            return Array(data)
        }
        return SpoolFormat.decode(data)
    }

    /// Deletes a fully drained segment (file I/O on the thread pool).
    func remove(segment number: Int) async {
        let path = Self.path(directory, number)
        let directory = directory
        let size = (try? await threadPool.runIfActive { () -> Int in
            let size = Self.fileSize(path)
            guard unlink(path) == 0 else { return 0 }
            Self.syncDirectory(directory)
            return size
        }) ?? 0
        state.withLock { $0.totalBytes = max(0, $0.totalBytes - size) }
    }

    static func path(_ directory: String, _ number: Int) -> String {
        directory + "/" + String(format: "segment-%020d.spool", number)
    }

    static func segmentNumbers(in directory: String) -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name -> Int? in
            guard name.hasPrefix("segment-"), name.hasSuffix(".spool") else { return nil }
            return Int(name.dropFirst(8).dropLast(6))
        }.sorted()
    }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    private static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }
}
