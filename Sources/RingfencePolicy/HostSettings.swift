/// The settings of the `kind = "host"` guard: the vendors' advice ("block everything but the API
/// port") as one guard. Every TCP and UDP port of the network namespace is fenced against peers
/// outside the guard's `allow`, except the `public` ports, which are open to everyone. Ports of
/// named guards keep their own allowlists; loopback, replies to connections the host opened
/// itself, and ICMP pass.
public struct HostSettings: Hashable, Sendable {
    /// Ports open to every peer, TCP and UDP (`public = [22, 8000]`), as written.
    public var publicPorts: [UInt16]

    public init(publicPorts: [UInt16] = []) {
        self.publicPorts = publicPorts
    }

    /// The port an operator reaches the host on; a host guard that leaves it closed to everyone
    /// outside `allow` is warned about (anti-lockout).
    public static let sshPort: UInt16 = 22
}
