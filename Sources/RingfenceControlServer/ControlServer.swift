import Dispatch
import Logging
import RingfenceControl
import RingfenceIO
import RingfenceStatus
import RingfenceSockets
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's control socket: a Unix socket, mode 0600, where each connection carries one
/// JSON request and gets one JSON reply (`ControlRequest`, `ControlReply`).
///
/// Only root and the daemon's own user may talk to it: the peer's credentials (SO_PEERCRED)
/// are checked at accept, besides the file mode. A request that is malformed, over
/// `ControlCodec.maxRequestBytes`, or not whole within `requestTimeout` gets an error reply and
/// costs the daemon nothing else; at most `maxClients` connections are served at once. Runs on
/// its own loop; `handler` is called there and may reply from any queue.
public final class ControlServer: @unchecked Sendable {
    public typealias Reply = @Sendable (ControlReply) -> Void
    public typealias Handler = @Sendable (ControlRequest, Posix.PeerCredentials, @escaping Reply) -> Void

    public let path: String
    private let loop: EventLoop
    private let logger: Logger
    private let allowedUID: UInt32
    private let requestTimeout: Duration
    private let maxClients: Int
    private let handler: Handler
    private var listener: Channel?
    private var clients: [UInt64: ControlClientState] = [:]
    private var nextID: UInt64 = 0
    private var timer: (any DispatchSourceTimer)?

    /// Binds `path` (mode 0600; its directory is made, mode 0755, if missing) and serves.
    /// - Parameter allowedUID: the one user besides root that may connect (the daemon's own).
    /// - Throws: `ControlServerError` when the path is in use by a live daemon, is not a socket,
    ///   or cannot be bound.
    public init(
        path: String, loop: EventLoop, logger: Logger, allowedUID: UInt32 = getuid(),
        requestTimeout: Duration = .seconds(5), maxClients: Int = 16, handler: @escaping Handler
    ) throws(ControlServerError) {
        self.path = path
        self.loop = loop
        self.logger = logger
        self.allowedUID = allowedUID
        self.requestTimeout = requestTimeout
        self.maxClients = maxClients
        self.handler = handler
        try Self.prepare(path)
        let socket: Socket
        do throws(Errno) {
            socket = try Posix.unixListen(path: path, mode: 0o600)
        } catch {
            throw .bind(path, error)
        }
        let fd = socket.fd
        let channel = Channel(socket: socket, loop: loop, onReadable: { [weak self] in self?.acceptAll(fd) }, onWritable: {})
        listener = channel
        let sweepEvery = min(requestTimeout / 4, .seconds(1))
        loop.execute { [weak self] in
            channel.setReading(true)
            guard let self else { return }
            timer = loop.repeatingTimer(every: sweepEvery) { [weak self] in self?.sweep(now: .now) }
        }
    }

    /// Removes the socket file at once, then stops serving (on the loop).
    public func close() {
        unlink(path)
        loop.execute { [self] in
            listener?.close()
            listener = nil
            timer?.cancel()
            timer = nil
            for client in clients.values { client.connection.close() }
            clients = [:]
        }
    }

    /// A socket file left by a daemon that died is removed; one that a live daemon answers on,
    /// or a path that is not a socket, is refused.
    private static func prepare(_ path: String) throws(ControlServerError) {
        guard path.hasPrefix("/"), path.utf8.count <= Posix.maxUnixPathBytes else { throw .badPath(path) }
        let directory = String(path[..<path.lastIndex(of: "/")!])
        if !directory.isEmpty, access(directory, F_OK) != 0, mkdir(directory, 0o755) != 0, errno != EEXIST {
            throw .bind(path, Errno(rawValue: errno))
        }
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw .notASocket(path) }
        if let live = try? Posix.unixConnect(path: path) {
            live.close()
            throw .inUse(path)
        }
        unlink(path)
    }

    private func acceptAll(_ listenFD: Int32) {
        for _ in 0..<16 {
            let result: IOResult<Socket>
            do throws(Errno) {
                result = try Posix.acceptUnix(listenFD)
            } catch {
                logger.warning("control socket: accept failed", metadata: ["error": "\(error)"])
                return
            }
            switch consume result {
            case .done(let accepted): admit(accepted)
            case .wouldBlock: return
            }
        }
    }

    private func admit(_ socket: consuming Socket) {
        guard clients.count < maxClients else {
            logger.warning("control socket: too many clients; connection closed", metadata: ["max": "\(maxClients)"])
            return socket.close()
        }
        nextID += 1
        let fd = socket.fd
        let client = ControlClientState(id: nextID, socket: socket, loop: loop)
        clients[client.id] = client
        let credentials = Posix.peerCredentials(fd)
        guard let credentials, credentials.uid == 0 || credentials.uid == allowedUID else {
            let uid = credentials.map { "\($0.uid)" } ?? "unknown"
            logger.warning("control socket: client refused", metadata: ["uid": "\(uid)", "reason": "not root or the daemon's user"])
            return respond(
                client,
                .failure(ControlError(
                    code: .notPermitted,
                    message: "uid \(uid) may not use the control socket: run as root or as the daemon's user")))
        }
        client.credentials = credentials
        client.connection.onRead = { [unowned self, unowned client] bytes in received(bytes, from: client) }
        client.connection.onEndOfInput = { [unowned self, unowned client] in endOfInput(client) }
        client.connection.onError = { [unowned self, unowned client] _ in drop(client) }
        client.connection.setReading(true)
    }

    private func received(_ bytes: UnsafeRawBufferPointer, from client: ControlClientState) {
        guard case .reading = client.phase else { return }  // after the reply: drained and ignored
        if let newline = bytes.firstIndex(of: 0x0A) {
            client.buffer.append(contentsOf: bytes[..<newline])
            return handle(client)
        }
        client.buffer.append(contentsOf: bytes)
        if client.buffer.count > ControlCodec.maxRequestBytes {
            logger.warning("control socket: request too large", metadata: ["bytes": "> \(ControlCodec.maxRequestBytes)"])
            respond(
                client,
                .failure(ControlError(
                    code: .tooLarge, message: "a request is at most \(ControlCodec.maxRequestBytes) bytes")))
        }
    }

    private func endOfInput(_ client: ControlClientState) {
        client.inputEnded = true
        switch client.phase {
        case .reading: handle(client)
        case .handling: break  // the reply closes it
        case .replied: drop(client)
        }
    }

    private func handle(_ client: ControlClientState) {
        let request: ControlRequest
        do throws(ControlError) {
            guard !client.buffer.isEmpty else {
                throw ControlError(code: .badRequest, message: "empty request: send one JSON object")
            }
            request = try ControlCodec.request(from: client.buffer)
        } catch {
            logger.warning("control socket: bad request", metadata: ["error": "\(error.message)"])
            return respond(client, .failure(error))
        }
        client.phase = .handling
        client.buffer = []
        logger.debug("control request", metadata: ["command": "\(request.command.rawValue)"])
        let id = client.id
        handler(request, client.credentials!) { [weak self] reply in
            guard let self else { return }
            loop.execute {
                guard let client = self.clients[id] else { return }
                self.respond(client, reply)
            }
        }
    }

    /// Writes the reply and a FIN, then reads to the end of the client's input so that closing
    /// never resets a reply the client has not read.
    private func respond(_ client: ControlClientState, _ reply: ControlReply) {
        client.phase = .replied(since: .now)
        client.connection.onRead = { _ in }
        client.connection.onEndOfInput = { [unowned self, unowned client] in drop(client) }
        client.connection.onError = { [unowned self, unowned client] _ in drop(client) }
        // Once written: closed at once if the client has finished sending, else at its end.
        client.connection.onDrained = { [unowned self, unowned client] in
            if client.inputEnded { drop(client) }
        }
        client.connection.write(ControlCodec.encode(reply))
        client.connection.shutdownWrite()
        client.connection.setReading(true)
    }

    private func drop(_ client: ControlClientState) {
        client.connection.close()
        clients[client.id] = nil
    }

    private func sweep(now: ContinuousClock.Instant) {
        for client in clients.values {
            switch client.phase {
            case .reading where now - client.since > requestTimeout:
                logger.warning("control socket: request not received in time", metadata: ["timeout": "\(requestTimeout)"])
                respond(
                    client,
                    .failure(ControlError(code: .timeout, message: "no whole request within \(requestTimeout)")))
            case .replied(let since) where now - since > requestTimeout:
                drop(client)
            default:
                break
            }
        }
    }
}

/// One control connection, confined to the server's loop.
final class ControlClientState: @unchecked Sendable {
    enum Phase {
        case reading
        case handling
        case replied(since: ContinuousClock.Instant)
    }

    let id: UInt64
    let connection: Connection
    let since = ContinuousClock.now
    var phase = Phase.reading
    var buffer: [UInt8] = []
    var inputEnded = false
    var credentials: Posix.PeerCredentials?

    init(id: UInt64, socket: consuming Socket, loop: EventLoop) {
        self.id = id
        connection = Connection(socket: socket, loop: loop, writeLimit: 64 << 20, readBufferSize: 16 << 10)
    }
}
