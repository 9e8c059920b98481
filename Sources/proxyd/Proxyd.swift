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
            Runs in the foreground. SIGHUP re-reads the policy (a bad file is refused and the fence in \
            force stays); SIGTERM stops, leaving the fence in place unless [firewall] remove_on_exit = true.
            """
    )

    @Option(name: .long, help: "The policy file.")
    var policy: String

    @Option(name: .long, help: "Control socket path (overrides [daemon] control_socket; reserved: the control plane is not served yet).")
    var controlSocket: String?

    @Option(name: .long, help: "The lowest level logged.")
    var logLevel: Logger.Level = .info

    func run() throws {
        let level = logLevel
        LoggingSystem.bootstrap { _ in
            var handler = LogfmtHandler()
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "proxyd")
        do {
            let daemon = try Daemon(policyPath: policy, logger: logger)
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
