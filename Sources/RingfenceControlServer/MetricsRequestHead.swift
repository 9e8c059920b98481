/// The head of one HTTP/1.x request to the `/metrics` endpoint, taken in as its bytes arrive, and
/// what to answer it: the pure half of `MetricsServer`, apart from its sockets so that it can be
/// fuzzed (`Fuzz/FuzzMetricsRequest`, docs/reliability.md).
///
/// Only the request line matters: `GET` or `HEAD` of `/metrics` (a query is ignored) with
/// `HTTP/1.x`. Header lines are skipped, not parsed. The head ends at its blank line (`\n\n` or
/// `\n\r\n`) and must be at most `maxBytes` long, counting that line, whichever pieces it came in:
/// the same bytes get the same answer however the network cuts them.
public struct MetricsRequestHead: Sendable {
    /// What the server answers a head with.
    public enum Route: Equatable, Sendable {
        /// `GET /metrics` (`headOnly` false) or `HEAD /metrics`.
        case metrics(headOnly: Bool)
        /// Another path: 404.
        case notFound
        /// Another method on `/metrics`: 405.
        case methodNotAllowed
        /// Not an HTTP/1.x request line: 400.
        case badRequest
        /// The blank line did not come within `maxBytes`: 431.
        case tooLarge
    }

    /// The longest head served: a scraper's is a few hundred bytes.
    public static let maxBytes = 8 << 10

    private var bytes: [UInt8] = []
    /// Where the search for the blank line goes on: each byte is looked at once.
    private var scanned = 0
    /// Set once the head is whole or too large; later bytes are ignored.
    public private(set) var route: Route?

    public init() {}

    /// Takes in the next bytes of the connection; returns the route once the head is whole (or
    /// too large), `nil` while more is needed.
    @discardableResult
    public mutating func append(_ piece: some Collection<UInt8>) -> Route? {
        guard route == nil else { return route }
        bytes.append(contentsOf: piece.prefix(Self.maxBytes + 1 - bytes.count))
        if let end = blankLine() {
            route = end <= Self.maxBytes ? Self.route(requestLine: bytes[..<end]) : .tooLarge
        } else if bytes.count > Self.maxBytes {
            route = .tooLarge
        }
        return route
    }

    /// The index just past the blank line that ends the head, if it has arrived; scans each byte once.
    private mutating func blankLine() -> Int? {
        while scanned < bytes.count {
            let index = scanned
            scanned += 1
            guard bytes[index] == 0x0A, index >= 1 else { continue }
            if bytes[index - 1] == 0x0A { return index + 1 }
            if index >= 2, bytes[index - 1] == 0x0D, bytes[index - 2] == 0x0A { return index + 1 }
        }
        return nil
    }

    /// The answer to a head, from its request line: `METHOD TARGET HTTP/1.x`, spaces around
    /// trimmed, empty lines before it skipped (as RFC 9112 asks of a server).
    public static func route(requestLine head: ArraySlice<UInt8>) -> Route {
        let line = head.drop { $0 == 0x0A || $0 == 0x0D }.prefix { $0 != 0x0A }
        let parts = String(decoding: line, as: UTF8.self).trimmingSpaces().split(separator: " ")
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else { return .badRequest }
        let target = parts[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        guard target == "/metrics" else { return .notFound }
        switch parts[0] {
        case "GET": return .metrics(headOnly: false)
        case "HEAD": return .metrics(headOnly: true)
        default: return .methodNotAllowed
        }
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        String(self.drop { $0 == " " || $0 == "\r" }.reversed().drop { $0 == " " || $0 == "\r" }.reversed())
    }
}
