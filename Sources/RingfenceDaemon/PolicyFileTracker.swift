/// What the policy watch knows of the file it follows: the bytes it last read, so that a burst
/// of events reloads only when the content changed (a ConfigMap's symlink swap: one reload; a
/// `touch`, or a write of the same bytes: none), and which directories to watch. Pure: the
/// watch reads the file and resolves its path, this decides.
struct PolicyFileTracker: Sendable {
    /// What a look at the file found.
    enum Verdict: Equatable, Sendable {
        /// Content other than the last seen: reload.
        case changed
        /// The same content as last seen, or still missing.
        case unchanged
        /// The file cannot be read now, and could last time: report it once; the policy in force stays.
        case vanished
    }

    /// The content last read (the one the daemon loaded, or a later one the watch reloaded).
    private(set) var lastSeen: [UInt8]?
    private var missing = false

    init(contents: [UInt8]?) {
        lastSeen = contents
        missing = contents == nil
    }

    /// Notes the file's content now (nil: it cannot be read) and says what to do.
    mutating func observe(_ contents: [UInt8]?) -> Verdict {
        guard let contents else {
            defer { missing = true }
            return missing ? .unchanged : .vanished
        }
        missing = false
        if contents == lastSeen { return .unchanged }
        lastSeen = contents
        return .changed
    }

    /// The directories to watch for a policy at `path` whose symbolic links resolve to
    /// `resolved`: the file's own directory (where a ConfigMap renames `..data`, an editor renames
    /// its temporary file, `cp` writes in place) and, when it differs, the resolved file's
    /// directory (where a link's target is edited). Resolved anew after every burst, so a
    /// swapped `..data` is followed into its new directory.
    static func directories(path: String, resolved: String?) -> [String] {
        let own = directory(of: path)
        guard let resolved else { return [own] }
        let target = directory(of: resolved)
        return target == own ? [own] : [own, target]
    }

    /// The directory part of `path`: "." for a bare name, "/" for a file at the root.
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
