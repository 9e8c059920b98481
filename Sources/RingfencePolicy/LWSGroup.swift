/// The pods of this pod's LeaderWorkerSet group, by DNS name, as `"lws:group"` stands for them.
///
/// LeaderWorkerSet sets `LWS_LEADER_ADDRESS` (`NAME-GROUP.SUBDOMAIN.NAMESPACE`, the leader's name
/// in the group's headless service) and `LWS_GROUP_SIZE` (leader and workers together) in every
/// container of every pod of a group; a worker's name is the leader's first label with
/// `-INDEX` appended, INDEX from 1 to `LWS_GROUP_SIZE` − 1, in the same domain. So a group of
/// three led by `vllm-0.vllm.default` is `vllm-0.vllm.default`, `vllm-0-1.vllm.default` and
/// `vllm-0-2.vllm.default` (this pod among them). When the group is recreated its pods keep these
/// names and get new addresses, which proxyd follows by resolving them again.
public struct LWSGroup: Hashable, Sendable {
    /// The largest group `lws:group` expands: a larger `LWS_GROUP_SIZE` is refused as a mistake.
    public static let maxSize = 1024

    /// The leader first, then the workers by index.
    public let names: [PeerName]

    /// Expands the group from LeaderWorkerSet's variables in `environment`.
    /// - Throws: what is missing or malformed, and what to do outside a LeaderWorkerSet.
    public init(environment: PolicyEnvironment) throws(PeerNameError) {
        let leader = environment["LWS_LEADER_ADDRESS"]
        let size = environment["LWS_GROUP_SIZE"]
        guard let leader, !leader.isEmpty, let size, !size.isEmpty else {
            let missing = [("LWS_LEADER_ADDRESS", leader), ("LWS_GROUP_SIZE", size)]
                .filter { $0.1?.isEmpty ?? true }.map(\.0).joined(separator: " and ")
            throw PeerNameError(
                "lws:group needs \(missing), which LeaderWorkerSet sets in every pod of a group; "
                    + "outside a LeaderWorkerSet, list the peers as addresses or dns:NAME entries")
        }
        guard let count = Int(size), count >= 1, count <= Self.maxSize else {
            throw PeerNameError("lws:group: LWS_GROUP_SIZE is '\(size)', not a group size from 1 to \(Self.maxSize)")
        }
        let leaderName: PeerName
        do throws(PeerNameError) {
            leaderName = try PeerName(validating: leader)
        } catch {
            throw PeerNameError("lws:group: LWS_LEADER_ADDRESS: \(error.message)")
        }
        let labels = leaderName.name.split(separator: ".", maxSplits: 1)
        let host = String(labels[0])
        let domain = labels.count > 1 ? "." + labels[1] : ""
        var names = [leaderName]
        for index in 1..<count {
            do throws(PeerNameError) {
                names.append(try PeerName(validating: "\(host)-\(index)\(domain)"))
            } catch {
                throw PeerNameError("lws:group: worker \(index) of '\(leader)': \(error.message)")
            }
        }
        self.names = names
    }
}
