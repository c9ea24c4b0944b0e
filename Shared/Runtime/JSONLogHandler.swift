import Foundation
import Logging
import Synchronization

/// A swift-log handler that writes one JSON object per line to standard error:
/// `{"ts":…,"level":…,"label":…,"msg":…,"service":…, <metadata>…}`. Messages are constant
/// strings; values travel in dotted metadata keys.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private static let output = Mutex(())

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var object: [String: Any] = [
            "ts": ISO8601DateFormatter.string(from: Date(), timeZone: .gmt,
                                              formatOptions: [.withInternetDateTime, .withFractionalSeconds]),
            "level": event.level.rawValue,
            "label": label,
            "msg": event.message.description,
        ]
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        for (key, value) in merged { object[key] = Self.plain(value) }
        if event.level >= .warning { object["source"] = "\(event.file):\(event.line)" }
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(0x0A)
        Self.output.withLock { _ in FileHandle.standardError.write(data) }
    }

    private static func plain(_ value: Logger.MetadataValue) -> Any {
        switch value {
        case .string(let s): return s
        case .stringConvertible(let c): return c.description
        case .array(let a): return a.map(plain)
        case .dictionary(let d): return d.mapValues(plain)
        }
    }
}

/// Sets up logging once per process, from `log.level` and `log.format`.
public enum LoggingBootstrap {
    private static let done = Mutex(false)

    /// Bootstraps swift-log (only the first call has effect) and returns the daemon's logger.
    public static func bootstrap(service: String, level: String, format: String) -> Logger {
        let logLevel = Logger.Level(rawValue: level) ?? .info
        done.withLock { done in
            guard !done else { return }
            done = true
            LoggingSystem.bootstrap { label in
                if format == "text" {
                    var handler = StreamLogHandler.standardError(label: label)
                    handler.logLevel = logLevel
                    return handler
                }
                return JSONLogHandler(label: label, level: logLevel)
            }
        }
        var logger = Logger(label: "tributary.\(service)")
        logger.logLevel = logLevel
        logger[metadataKey: "service"] = .string(service)
        return logger
    }
}
