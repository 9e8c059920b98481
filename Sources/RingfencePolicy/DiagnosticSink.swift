/// Collects the problems found while a policy is read, each against a key path.
/// Positions are attached later, all at once, by `SourceLocator`.
final class DiagnosticSink {
    private(set) var problems: [(path: String, message: String)] = []

    func report(_ path: String, _ message: String) {
        problems.append((path, message))
    }

    var isEmpty: Bool { problems.isEmpty }
}
