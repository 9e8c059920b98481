/// The process that owns a socket: its pid (the thread group id) and its command line, with the
/// NULs between arguments turned into spaces and the ends trimmed.
public struct SocketOwner: Hashable, Sendable {
    public var pid: Int32
    public var commandLine: String

    public init(pid: Int32, commandLine: String) {
        self.pid = pid
        self.commandLine = commandLine
    }
}
