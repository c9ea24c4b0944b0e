import CJemalloc

/// The memory allocator every daemon runs on: jemalloc, linked into each executable
/// (Debian's `libjemalloc-dev`), in place of glibc's malloc.
///
/// The daemons build and drop many small objects per event (strings, JSON trees) and
/// buffers of hundreds of kilobytes per turn (COPY data, queue pushes, Redis replies).
/// Measured in hydration: glibc's malloc and free took about 9 % of its CPU, and its large
/// buffers were mapped and faulted in afresh each time (another 5 %); with jemalloc
/// hydration used about 9 % less CPU per event (docs/performance.md).
public enum Allocator {
    /// The allocator's name and version, e.g. `jemalloc 5.3.0-0-g54eaed1d8b56b1aa528be3bdd1877e59c56fa90c`;
    /// `nil` if jemalloc's control interface does not answer (it always should).
    public static var description: String? {
        var version: UnsafePointer<CChar>?
        var length = MemoryLayout<UnsafePointer<CChar>?>.size
        guard mallctl("version", &version, &length, nil, 0) == 0, let version else { return nil }
        return "jemalloc " + String(cString: version)
    }
}
