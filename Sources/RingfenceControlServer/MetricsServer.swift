import Dispatch
import Logging
import RingfenceIO
import RingfenceSockets
import SystemPackage

/// `/metrics` over HTTP/1.x for Prometheus: `GET /metrics` gets the text that `render` returns
/// (called on the loop), anything else a short error, and every connection is closed after its
/// one reply.
///
/// Hand-written rather than an HTTP library: it answers one request line (`MetricsRequestHead`,
/// the pure part), and the project takes no SwiftNIO. A request head over 8 KiB, or not whole
/// within `requestTimeout`, is refused; at most `maxClients` connections are open at once, so a
/// scan cannot take the daemon's descriptors.
public final class MetricsServer: @unchecked Sendable {
    private let loop: EventLoop
    private let logger: Logger
    private let render: () -> String
    private let requestTimeout: Duration
    private let maxClients: Int
    private var listener: Listener?
    private var clients: [UInt64: MetricsClient] = [:]
    private var nextID: UInt64 = 0
    private var timer: (any DispatchSourceTimer)?

    /// Binds and listens at once, so that an address in use fails here.
    public init(
        address: SocketAddress, loop: EventLoop, logger: Logger, requestTimeout: Duration = .seconds(5),
        maxClients: Int = 64, render: @escaping () -> String
    ) throws(Errno) {
        self.loop = loop
        self.logger = logger
        self.render = render
        self.requestTimeout = requestTimeout
        self.maxClients = maxClients
        listener = try Listener(address: address, loop: loop, backlog: 64) { [weak self] socket, _ in
            guard let self else { return socket.close() }
            accepted(socket)
        }
        loop.execute { [weak self] in
            guard let self else { return }
            timer = loop.repeatingTimer(every: min(requestTimeout / 4, .seconds(1))) { [weak self] in self?.sweep() }
        }
    }

    /// Stops serving; open connections are closed.
    public func close() {
        listener?.close()
        listener = nil
        loop.execute { [self] in
            timer?.cancel()
            timer = nil
            for client in clients.values { client.connection.close() }
            clients = [:]
        }
    }

    private func accepted(_ socket: consuming Socket) {
        if clients.count >= maxClients { dropOldestReplied() }
        guard clients.count < maxClients else {
            logger.warning("metrics: too many connections; closed", metadata: ["max": "\(maxClients)"])
            return socket.close(reset: true)
        }
        nextID += 1
        let client = MetricsClient(id: nextID, connection: Connection(socket: socket, loop: loop, writeLimit: 256 << 20, readBufferSize: 8192))
        clients[client.id] = client
        client.connection.onRead = { [unowned self, unowned client] bytes in received(bytes, client) }
        client.connection.onEndOfInput = { [unowned self, unowned client] in
            if client.replied { drop(client) } else { respond(client, status: "400 Bad Request", body: "incomplete request\n") }
        }
        client.connection.onError = { [unowned self, unowned client] _ in drop(client) }
        client.connection.setReading(true)
    }

    private func received(_ bytes: UnsafeRawBufferPointer, _ client: MetricsClient) {
        guard !client.replied, let route = client.head.append(bytes) else { return }
        switch route {
        case .metrics(let headOnly):
            respond(client, status: "200 OK", body: render(), contentType: "text/plain; version=0.0.4; charset=utf-8", headOnly: headOnly)
        case .notFound:
            respond(client, status: "404 Not Found", body: "only /metrics is served\n")
        case .methodNotAllowed:
            respond(client, status: "405 Method Not Allowed", body: "GET only\n", extra: "Allow: GET, HEAD\r\n")
        case .badRequest:
            respond(client, status: "400 Bad Request", body: "not an HTTP/1.x request\n")
        case .tooLarge:
            logger.warning("metrics: request head too large", metadata: ["bytes": "> \(MetricsRequestHead.maxBytes)"])
            respond(client, status: "431 Request Header Fields Too Large", body: "request head over 8 KiB\n")
        }
        logger.debug("metrics: request", metadata: ["route": "\(route)"])
    }

    private func respond(
        _ client: MetricsClient, status: String, body: String, contentType: String = "text/plain; charset=utf-8",
        extra: String = "", headOnly: Bool = false
    ) {
        client.replied = true
        client.repliedAt = .now
        let head = "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\n"
            + extra + "Connection: close\r\n\r\n"
        client.connection.write(Array(head.utf8) + (headOnly ? [] : Array(body.utf8)))
        client.connection.shutdownWrite()
        // Read on to the client's end, then close: a close with unread input would reset the reply.
        client.connection.onRead = { _ in }
        client.connection.onEndOfInput = { [unowned self, unowned client] in drop(client) }
    }

    /// At the cap, a connection already answered (waiting only for its client's FIN, which
    /// may be on its way) gives its place to a new one: a scraper that reconnects at once,
    /// 64 of them at a time, would otherwise be reset while the cap is held by answered
    /// connections (docs/reliability.md, "Bad input at the edges"). Its reply is already in
    /// the kernel, so closing it loses nothing.
    private func dropOldestReplied() {
        let answered = clients.values.filter(\.replied)
        guard let oldest = answered.min(by: { $0.repliedAt < $1.repliedAt }) else { return }
        drop(oldest)
    }

    private func drop(_ client: MetricsClient) {
        client.connection.close()
        clients[client.id] = nil
    }

    private func sweep() {
        let now = ContinuousClock.now
        for client in clients.values {
            if client.replied {
                if now - client.repliedAt > requestTimeout { drop(client) }
            } else if now - client.since > requestTimeout {
                respond(client, status: "408 Request Timeout", body: "no whole request within \(requestTimeout)\n")
            }
        }
    }
}

/// One `/metrics` connection, confined to the server's loop.
final class MetricsClient: @unchecked Sendable {
    let id: UInt64
    let connection: Connection
    let since = ContinuousClock.now
    var head = MetricsRequestHead()
    var replied = false
    var repliedAt = ContinuousClock.now

    init(id: UInt64, connection: Connection) {
        self.id = id
        self.connection = connection
    }
}

