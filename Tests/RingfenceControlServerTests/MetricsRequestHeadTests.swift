import Testing

@testable import RingfenceControlServer

/// The `/metrics` request head, without sockets: routes, limits, and the same answer however the
/// bytes are cut.
struct MetricsRequestHeadTests {
    static func route(_ text: String) -> MetricsRequestHead.Route? {
        var head = MetricsRequestHead()
        return head.append(Array(text.utf8))
    }

    @Test func routesByRequestLine() {
        #expect(Self.route("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == .metrics(headOnly: false))
        #expect(Self.route("HEAD /metrics HTTP/1.0\r\n\r\n") == .metrics(headOnly: true))
        #expect(Self.route("GET /metrics?name[]=x HTTP/1.1\n\n") == .metrics(headOnly: false))
        #expect(Self.route("  GET /metrics HTTP/1.1  \r\n\r\n") == .metrics(headOnly: false))
        #expect(Self.route("\r\nGET /metrics HTTP/1.1\r\n\r\n") == .metrics(headOnly: false))
        #expect(Self.route("GET /other HTTP/1.1\r\n\r\n") == .notFound)
        #expect(Self.route("POST /metrics HTTP/1.1\r\n\r\n") == .methodNotAllowed)
        #expect(Self.route("GET /metrics HTTP/2.0\r\n\r\n") == .badRequest)
        #expect(Self.route("GET /metrics\r\n\r\n") == .badRequest)
        #expect(Self.route("\u{16}\u{03}\u{01}\u{FF}\r\n\r\n") == .badRequest)
        #expect(Self.route("\r\n\r\n") == .badRequest)
    }

    @Test func waitsForTheBlankLine() {
        var head = MetricsRequestHead()
        #expect(head.append(Array("GET /metrics HTTP/1.1\r\n".utf8)) == nil)
        #expect(head.append(Array("Host: x\r\n".utf8)) == nil)
        #expect(head.append(Array("\r".utf8)) == nil)
        #expect(head.append(Array("\n".utf8)) == .metrics(headOnly: false))
        #expect(head.append(Array("DELETE / HTTP/1.1\r\n\r\n".utf8)) == .metrics(headOnly: false))
    }

    /// 8 KiB counting the blank line is served, a byte more is not, in one piece or in many.
    @Test func aHeadOfAtMostEightKiBIsServed() {
        let line = "GET /metrics HTTP/1.1\r\n"
        let padding = MetricsRequestHead.maxBytes - line.utf8.count - "X: \r\n\r\n".utf8.count
        let fits = Array((line + "X: " + String(repeating: "a", count: padding) + "\r\n\r\n").utf8)
        #expect(fits.count == MetricsRequestHead.maxBytes)
        let over = Array((line + "X: " + String(repeating: "a", count: padding + 1) + "\r\n\r\n").utf8)
        for size in [1, 7, 1000, MetricsRequestHead.maxBytes, 100_000] {
            var head = MetricsRequestHead()
            var answer: MetricsRequestHead.Route?
            for start in stride(from: 0, to: fits.count, by: size) { answer = head.append(fits[start..<min(start + size, fits.count)]) }
            #expect(answer == .metrics(headOnly: false), "pieces of \(size)")
            head = MetricsRequestHead()
            for start in stride(from: 0, to: over.count, by: size) { answer = head.append(over[start..<min(start + size, over.count)]) }
            #expect(answer == .tooLarge, "pieces of \(size)")
        }
        var endless = MetricsRequestHead()
        #expect(endless.append([UInt8](repeating: 0x41, count: MetricsRequestHead.maxBytes)) == nil)
        #expect(endless.append([0x41]) == .tooLarge)
    }

    /// Every way of cutting a head into two reads gives the answer it gets whole (the fuzz
    /// target checks the same for any bytes).
    @Test func theAnswerDoesNotDependOnHowTheBytesAreCut() {
        for text in ["GET /metrics HTTP/1.1\r\nA: b\r\n\r\n", "HEAD /x HTTP/1.1\n\n", "GET /metrics HTTP/1.1\r\n\n", "\n\r\n"] {
            let bytes = Array(text.utf8)
            let whole = Self.route(text)
            for cut in 0...bytes.count {
                var head = MetricsRequestHead()
                head.append(bytes[..<cut])
                #expect(head.append(bytes[cut...]) == whole, "\(text.debugDescription) cut at \(cut)")
            }
        }
    }
}
