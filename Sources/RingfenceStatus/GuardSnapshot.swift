/// What a running guard reports when asked: its status line and its live connections, taken
/// together on its loops so that the two agree.
public struct GuardSnapshot: Sendable {
    public var status: GuardStatus
    public var connections: [ConnectionStatus]

    public init(status: GuardStatus, connections: [ConnectionStatus]) {
        self.status = status
        self.connections = connections
    }
}
