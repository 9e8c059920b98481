/// Collects the problems found while a policy is read, each against a key path.
/// Positions are attached later, all at once, by `SourceLocator`.
final class DiagnosticSink {
    private(set) var problems: [(path: String, message: String)] = []
    /// Things that are allowed but probably not meant (a host guard that closes SSH): reported,
    /// never a reason to refuse the policy.
    private(set) var warnings: [(path: String, message: String)] = []

    func warn(_ path: String, _ message: String) {
        warnings.append((path, message))
    }

    func report(_ path: String, _ message: String) {
        problems.append((path, message))
    }

    var isEmpty: Bool { problems.isEmpty }
}
