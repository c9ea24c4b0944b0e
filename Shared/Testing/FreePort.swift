import Foundation
import Synchronization

/// The next port to try: a random start in 27000–31999, then upwards, wrapping.
private let nextLoopbackPort = Mutex(27_000 + Int.random(in: 0..<5_000))

/// A TCP port on 127.0.0.1 that nothing listens on now, for a test server or daemon.
///
/// Taken below Linux's ephemeral range (32768–60999), which the kernel hands out to
/// outgoing connections and to `bind(0)`: a port picked there can be taken by any
/// connection between this call and the server's bind ("address already in use"), and a
/// daemon reconnecting to a stopped server there can connect to itself. Ports are handed
/// out in turn, so one test process never gets the same port twice in a row.
public func freeLoopbackPort() -> Int {
    for _ in 0..<5_000 {
        let port = nextLoopbackPort.withLock { next -> Int in
            let port = next
            next = next >= 31_999 ? 27_000 : next + 1
            return port
        }
        if canBindLoopback(port) { return port }
    }
    return kernelAssignedLoopbackPort()
}

private func canBindLoopback(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let length = socklen_t(MemoryLayout<sockaddr_in>.size)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    } == 0
}

private func kernelAssignedLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; returns whether it held.
public func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}
