import ArgumentParser
import RingfencePolicy

#if canImport(Glibc)
import Glibc
#endif

/// The policy file argument shared by the subcommands that work on a file.
struct PolicyArgument: ParsableArguments {
    @Argument(help: "The policy file (TOML).")
    var policy: String

    /// Loads the policy, or prints every problem as `FILE:LINE:COL: key.path: message` on stderr
    /// and exits 1.
    func load() throws -> Policy { try Self.load(policy) }

    /// Loads the policy at `policy`, or prints every problem and exits 1, as `load()`.
    static func load(_ policy: String) throws -> Policy {
        do {
            return try Policy.load(path: policy)
        } catch {
            var report = error.diagnostics.map { "\($0)\n" }.joined()
            let count = error.diagnostics.count
            report += "\(policy): \(count) problem\(count == 1 ? "" : "s"); policy refused\n"
            report.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
            throw ExitCode(1)
        }
    }
}
