import ArgumentParser
import Logging
import RingfenceDaemon

/// `proxyd`: the Ringfence daemon. Applies the policy's kernel fence, stays in the foreground,
/// reloads on SIGHUP and leaves the fence standing on exit unless told otherwise.
@main
struct Proxyd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxyd",
        abstract: "Fence off a host's inference ports according to a TOML policy.",
        discussion: """
            Runs in the foreground. SIGHUP or `proxyctl reload` re-reads the policy (a bad file is refused \
            and the fence in force stays); SIGTERM stops, leaving the fence in place unless \
            [firewall] remove_on_exit = true. Under systemd (Type=notify) it reports readiness and \
            answers the watchdog.
            """
    )

    @Option(name: .long, help: "The policy file.")
    var policy: String

    @Option(name: .long, help: "The control socket (overrides [daemon] control_socket).")
    var controlSocket: String?

    @Option(name: .long, help: "The lowest level logged.")
    var logLevel: Logger.Level = .info

    @Option(name: .long, help: "Log lines as logfmt (default) or json; one line per event either way.")
    var logFormat: LogFormat = .logfmt

    func run() throws {
        let level = logLevel
        let format = logFormat
        LoggingSystem.bootstrap { _ in
            var handler = LogLineHandler(format: format)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "proxyd")
        do {
            let daemon = try Daemon(policyPath: policy, controlSocket: controlSocket, logger: logger)
            try daemon.start()
            daemon.run()
        } catch {
            logger.critical("not started", metadata: ["policy": "\(policy)"])
            for line in error.description.split(separator: "\n") {
                logger.critical("\(line)")
            }
            throw ExitCode(1)
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
extension LogFormat: ExpressibleByArgument {}
