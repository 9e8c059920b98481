import RingfenceAddresses

/// A DNS name whose addresses a policy admits (`"dns:NAME"`, or one of the names `"lws:group"`
/// stands for). proxyd resolves it at run time with the system resolver and follows its changes;
/// the policy itself holds only the name (`Policy.resolvingNames(_:)` adds the addresses).
///
/// Kept as written, lowercased and without a trailing dot, so that the resolver's search list
/// applies to a short name (`vllm-0.vllm.default`) as it does for every other program in the pod.
public struct PeerName: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let name: String

    /// A name of at most 253 bytes in labels of 1 to 63 letters, digits, `-` or `_`, neither
    /// beginning nor ending with `-`.
    /// - Throws: a message saying what is wrong, for the policy's diagnostics.
    public init(validating text: String) throws(PeerNameError) {
        var name = text.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        guard !name.isEmpty else { throw PeerNameError("an empty name after dns:") }
        guard name.utf8.count <= 253 else { throw PeerNameError("'\(text)' is longer than 253 bytes") }
        if IPAddress(name) != nil || (try? CIDR(parsing: name)) != nil {
            throw PeerNameError("'\(text)' is an address, not a name; write it without dns:")
        }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            let valid = !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F }
            guard valid else {
                throw PeerNameError(
                    "'\(text)' is not a DNS name (labels of 1 to 63 letters, digits, - or _, separated by dots)")
            }
        }
        self.name = name
    }

    public var description: String { name }

    public static func < (lhs: PeerName, rhs: PeerName) -> Bool { lhs.name < rhs.name }
}

/// Why a `dns:` entry or `lws:group` was refused; `message` reads as a sentence.
public struct PeerNameError: Error, Hashable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
