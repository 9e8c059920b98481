import FuzzSupport
import RingfenceControl

/// The control protocol's request decoder (docs/commands.md, "The control protocol"): any bytes
/// are a request or a `ControlError`; never a trap.
func fuzzControlRequest(_ input: UnsafeRawBufferPointer) {
    do throws(ControlError) {
        _ = try ControlCodec.request(from: input)
    } catch {
        _ = error.message
    }
}

let fuzzTestOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32 = { data, size in
    fuzzControlRequest(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@main struct Main {
    static func main() { fuzzMain(fuzzTestOneInput, replaying: fuzzControlRequest) }
}
