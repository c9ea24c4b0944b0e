import Foundation

/// A child process for tests, spawned with `posix_spawn` and reaped with `waitpid`
/// (Foundation's `Process` does not always reap children inside the test runner, which
/// leaves zombies and hangs `waitUntilExit`).
public final class ChildProcess: @unchecked Sendable {
    /// The child's pid.
    public let pid: pid_t
    private let outputFD: Int32?
    private let inputFD: Int32?
    private var buffered: [UInt8] = []
    private var status: Int32?

    /// Starts `executable` with `arguments` and `environment` (the parent's when `nil`).
    /// With `captureOutput`, standard output is readable with ``readLine(timeout:)``;
    /// otherwise it goes to /dev/null. Standard error goes to `stderrPath` or /dev/null.
    /// With `writableInput`, ``writeLine(_:)`` writes to its standard input (else /dev/null).
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                captureOutput: Bool = false, stderrPath: String = "/dev/null", writableInput: Bool = false) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var inputFDs: [Int32] = [-1, -1]
        if writableInput {
            guard pipe(&inputFDs) == 0 else { throw TestEnvironmentError(description: "pipe failed") }
            posix_spawn_file_actions_adddup2(&actions, inputFDs[0], 0)
            posix_spawn_file_actions_addclose(&actions, inputFDs[0])
            posix_spawn_file_actions_addclose(&actions, inputFDs[1])
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        var pipeFDs: [Int32] = [-1, -1]
        if captureOutput {
            guard pipe(&pipeFDs) == 0 else { throw TestEnvironmentError(description: "pipe failed") }
            posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
            posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
            posix_spawn_file_actions_addclose(&actions, pipeFDs[1])
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let env = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            env.forEach { free($0) }
        }
        var child: pid_t = 0
        let result = posix_spawn(&child, executable, &actions, nil, argv, env)
        if captureOutput { close(pipeFDs[1]) }
        if writableInput { close(inputFDs[0]) }
        guard result == 0 else {
            if captureOutput { close(pipeFDs[0]) }
            if writableInput { close(inputFDs[1]) }
            throw TestEnvironmentError(description: "cannot start \(executable): errno \(result)")
        }
        pid = child
        if captureOutput {
            _ = fcntl(pipeFDs[0], F_SETFL, fcntl(pipeFDs[0], F_GETFL) | O_NONBLOCK)
            outputFD = pipeFDs[0]
        } else {
            outputFD = nil
        }
        inputFD = writableInput ? inputFDs[1] : nil
    }

    deinit {
        if let outputFD { close(outputFD) }
        if let inputFD { close(inputFD) }
        if status == nil {
            kill(pid, SIGKILL)
            var s: Int32 = 0
            waitpid(pid, &s, 0)
        }
    }

    /// Writes `line` and a newline to the child's standard input (blocking until written);
    /// `false` if it has none or the write failed.
    @discardableResult
    public func writeLine(_ line: String) -> Bool {
        guard let fd = inputFD else { return false }
        // A child that exited would otherwise kill the test process with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        let bytes = Array((line + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            offset += n
        }
        return true
    }

    /// Sends `signal` to the child.
    public func send(_ signal: Int32) { kill(pid, signal) }

    /// Whether the child is still running (reaps it if it exited).
    public var isRunning: Bool {
        if status != nil { return false }
        var s: Int32 = 0
        if waitpid(pid, &s, WNOHANG) == pid {
            status = s
            return false
        }
        return true
    }

    /// Waits for the child to exit, polling without blocking a thread.
    public func wait() async {
        while isRunning { try? await Task.sleep(for: .milliseconds(20)) }
    }

    /// The exit code, if the child exited normally.
    public var exitCode: Int32? {
        guard let s = status, s & 0x7f == 0 else { return nil }
        return (s >> 8) & 0xff
    }

    /// The signal that killed the child, if one did.
    public var terminatingSignal: Int32? {
        guard let s = status, s & 0x7f != 0, s & 0x7f != 0x7f else { return nil }
        return s & 0x7f
    }

    /// Reads one line of standard output, waiting up to `timeout`; `nil` at EOF or timeout.
    public func readLine(timeout: Duration = .seconds(30)) async -> String? {
        guard let fd = outputFD else { return nil }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let nl = buffered.firstIndex(of: 0x0A) {
                let line = String(decoding: buffered[..<nl], as: UTF8.self)
                buffered.removeSubrange(...nl)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &chunk, chunk.count)
            if n > 0 {
                buffered.append(contentsOf: chunk[..<n])
            } else if n == 0 {
                return nil
            } else {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        return nil
    }
}

/// Runs `executable` with `arguments`, waits for it, and returns its exit code (or -1
/// if a signal ended it).
public func runProcess(_ executable: String, _ arguments: [String],
                       environment: [String: String]? = nil, stderrPath: String = "/dev/null") async throws -> Int32 {
    let child = try ChildProcess(executable, arguments, environment: environment, stderrPath: stderrPath)
    await child.wait()
    return child.exitCode ?? -1
}
