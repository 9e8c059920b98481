import FuzzSupport
import RingfenceTCPStore

/// The TCPStore gate (docs/tcpstore.md) fed a client's bytes in pieces, with the relay's default
/// caps: it passes the bytes or names a violation; it never traps and never holds more than a
/// command's fixed fields whatever a length claims.
func fuzzTCPStoreGate(_ input: UnsafeRawBufferPointer) {
    var gate = TCPStoreGate(limits: TCPStoreLimits(maxKeyBytes: 4096, maxValueBytes: 4 << 20, maxKeys: 16384))
    for piece in Pieces(input) where gate.feed(piece) != nil {
        return
    }
}

let fuzzTestOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32 = { data, size in
    fuzzTCPStoreGate(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@main struct Main {
    static func main() { fuzzMain(fuzzTestOneInput, replaying: fuzzTCPStoreGate) }
}
