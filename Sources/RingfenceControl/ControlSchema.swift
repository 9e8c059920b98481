/// The control socket's protocol version. A request names the version it speaks; the daemon
/// answers a version it does not know with an error reply that gives its own.
public enum ControlSchema {
    public static let version = 1
}
