/// Why the kernel fence could not be changed. The fence in force stays as it was.
public struct FirewallError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// libnftables could not make a context (out of memory).
        case contextUnavailable
        /// nft refused the script: a syntax error, a missing privilege, a kernel without nf_tables.
        case rejected
        /// A ban asked for overlaps another ban of a different block.
        case banConflict
    }

    public var kind: Kind
    /// nft's own words, with its line breaks.
    public var detail: String

    public var description: String {
        let text = detail.trimmingSuffixNewlines
        switch kind {
        case .contextUnavailable:
            return "cannot create an nftables context: \(text)"
        case .rejected:
            let hint =
                text.contains("Operation not permitted")
                ? " (run as root or with CAP_NET_ADMIN)" : ""
            return "nftables refused the ruleset\(hint): \(text)"
        case .banConflict:
            return text
        }
    }
}

extension String {
    var trimmingSuffixNewlines: String {
        var result = self
        while result.last?.isNewline == true { result.removeLast() }
        return result
    }
}
