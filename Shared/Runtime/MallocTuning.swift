/// glibc malloc's handling of large buffers, tuned for daemons that build and drop buffers of
/// hundreds of kilobytes many times a second (a turn's COPY data, a queue push, a Redis reply).
///
/// By default glibc maps each buffer above 128 KiB (its threshold then adapts upwards) and trims
/// free memory at the top of a heap back to the kernel, so each such buffer's pages are faulted
/// in again on first touch: about 5 % of hydration's CPU went to those page faults. Here buffers
/// up to 4 MiB come from malloc's heaps, and up to 16 MiB of free memory at a heap's top is kept
/// for the next buffer rather than given back.
enum MallocTuning {
    /// Applies the tuning (once, at start-up; a no-op where malloc is not glibc's).
    static func keepLargeBuffers() {
        #if os(Linux)
        _ = mallopt(mmapThreshold, 4 << 20)
        _ = mallopt(trimThreshold, 16 << 20)
        #endif
    }

    #if os(Linux)
    // <malloc.h>'s M_MMAP_THRESHOLD and M_TRIM_THRESHOLD (Glibc's module map leaves malloc.h out).
    private static let mmapThreshold: Int32 = -3
    private static let trimThreshold: Int32 = -1
    #endif
}

#if os(Linux)
@_silgen_name("mallopt")
private func mallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif
