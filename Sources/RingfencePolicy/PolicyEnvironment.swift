#if canImport(Glibc)
import Glibc
#endif

/// The environment variables a policy may depend on (LeaderWorkerSet's, for `"lws:group"`).
/// The process's own by default (proxyd, `proxyctl check`); tests give their own.
public struct PolicyEnvironment: Sendable {
    private let lookup: @Sendable (String) -> String?

    /// The variables in `values`, and no others.
    public init(_ values: [String: String]) {
        lookup = { values[$0] }
    }

    /// The process's environment, read when asked (getenv).
    public static let process = PolicyEnvironment { name in getenv(name).map { String(cString: $0) } }

    private init(lookup: @escaping @Sendable (String) -> String?) {
        self.lookup = lookup
    }

    public subscript(name: String) -> String? { lookup(name) }
}
