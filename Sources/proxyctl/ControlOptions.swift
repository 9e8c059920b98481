import ArgumentParser
import RingfenceControl
import RingfencePolicy

#if canImport(Glibc)
import Glibc
#endif

/// The options every subcommand that talks to a running `proxyd` shares: where its control
/// socket is, and whether to print JSON.
struct ControlOptions: ParsableArguments {
    static let defaultSocket = "/run/ringfence/control.sock"

    @Option(name: .long, help: "The daemon's control socket (default: the policy's [daemon] control_socket, else \(defaultSocket)).")
    var controlSocket: String?

    @Flag(name: .long, help: "Print the daemon's reply as JSON (the control protocol's own form).")
    var json = false

    @Option(name: .long, help: .hidden)
    var timeout: Int = 60

    /// The socket to use: `--control-socket`, else the `[daemon] control_socket` of `policy`
    /// if it reads, else the default.
    func socketPath(policy: String?) -> String {
        if let controlSocket { return controlSocket }
        if let policy, let loaded = try? Policy.load(path: policy) { return loaded.daemon.controlSocket }
        return Self.defaultSocket
    }

    /// Sends `request` and returns the reply, or prints why there is none and exits 1. An error
    /// reply is printed (JSON with `--json`) and exits 1 too.
    func send(_ request: ControlRequest, policy: String?) throws -> ControlReply {
        let reply: ControlReply
        do throws(ControlClientError) {
            reply = try ControlClient.send(request, to: socketPath(policy: policy), timeout: .seconds(timeout))
        } catch {
            printError("proxyctl: \(error)")
            throw ExitCode(1)
        }
        if !reply.ok {
            if json {
                printJSON(reply)
            } else if let error = reply.error {
                printError("proxyctl: \(error.message)")
                for line in error.details { printError(line) }
            }
            throw ExitCode(1)
        }
        return reply
    }

    func printJSON(_ reply: ControlReply) {
        let bytes = ControlCodec.encode(reply)
        bytes.withUnsafeBytes { _ = write(STDOUT_FILENO, $0.baseAddress, $0.count) }
    }
}

/// A line on stderr.
func printError(_ line: String) {
    let text = line + "\n"
    text.utf8CString.withUnsafeBytes { _ = write(STDERR_FILENO, $0.baseAddress, $0.count - 1) }
}
