import Foundation
import TributaryTesting

/// A headless Chromium for a test, driven through `Tests/Fixtures/browser/driver.py`
/// (the DevTools protocol): serves test pages on its own origin, opens them, evaluates
/// JavaScript and reports the requests the pages sent.
final class Browser: @unchecked Sendable {
    private let driver: ChildProcess
    /// The origin the test pages are served from, e.g. `http://127.0.0.1:41234`.
    let pagesOrigin: String
    let logPath: String

    init(env: TestEnvironment, name: String) async throws {
        let directory = env.directory + "/" + TestEnvironment.uniqueName(name)
        logPath = directory + ".log"
        driver = try ChildProcess(env.python, [env.fixtures + "/browser/driver.py", directory], captureOutput: true,
                                  stderrPath: logPath, writableInput: true)
        guard let line = await driver.readLine(timeout: .seconds(90)),
              let ready = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let origin = ready["pages"] as? String else {
            let reason = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            throw TestEnvironmentError(description: "the browser driver did not start: \(reason.suffix(500))")
        }
        pagesOrigin = origin
    }

    deinit {
        // Let the driver close Chromium itself (it also dies with the driver).
        driver.writeLine(#"{"cmd":"quit"}"#)
        for _ in 0..<100 where driver.isRunning { usleep(50_000) }
    }

    /// Sends one command and returns its value; a failed command throws its reason.
    @discardableResult
    func command(_ command: [String: Any], timeout: Duration = .seconds(90)) async throws -> Any? {
        let data = try JSONSerialization.data(withJSONObject: command)
        guard driver.writeLine(String(decoding: data, as: UTF8.self)) else {
            throw TestEnvironmentError(description: "the browser driver is gone; see \(logPath)")
        }
        guard let line = await driver.readLine(timeout: timeout),
              let reply = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw TestEnvironmentError(description: "no answer from the browser driver to \(command["cmd"] ?? "?")")
        }
        guard reply["ok"] as? Bool == true else {
            throw TestEnvironmentError(description: "browser: \(reply["error"] ?? "failed")")
        }
        return reply["value"] is NSNull ? nil : reply["value"]
    }

    /// Serves `html` at `path` on the pages' origin; returns its URL.
    func serve(_ path: String, html: String) async throws -> String {
        try await command(["cmd": "page", "path": path, "html": html]) as? String ?? ""
    }

    /// Navigates to `url` and waits for its load event.
    func open(_ url: String) async throws {
        try await command(["cmd": "open", "url": url])
    }

    /// Evaluates `js` in the page (a promise is awaited) and returns its value.
    @discardableResult
    func eval(_ js: String) async throws -> Any? {
        try await command(["cmd": "eval", "js": js])
    }

    /// Runs `js` in every page opened from now on, before the page's own scripts.
    func addInitScript(_ js: String) async throws {
        try await command(["cmd": "init", "js": js])
    }

    /// The requests the pages sent to other origins, oldest first.
    func requests() async throws -> [[String: Any]] {
        try await command(["cmd": "requests"]) as? [[String: Any]] ?? []
    }
}
