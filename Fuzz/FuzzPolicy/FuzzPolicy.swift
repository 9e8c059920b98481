import FuzzSupport
import RingfencePolicy

/// The policy parser with its source locator (docs/policy.md): any text is a policy or a list of
/// diagnostics with positions; never a trap. LeaderWorkerSet's variables are set so that
/// `lws:group` is expanded too.
func fuzzPolicy(_ input: UnsafeRawBufferPointer) {
    let text = String(decoding: input, as: UTF8.self)
    let environment = PolicyEnvironment(["LWS_LEADER_ADDRESS": "vllm-0.vllm.default", "LWS_GROUP_SIZE": "3"])
    do throws(PolicyError) {
        _ = try Policy.parse(text, file: "fuzz.toml", environment: environment)
    } catch {
        _ = error.description
    }
}

let fuzzTestOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32 = { data, size in
    fuzzPolicy(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@main struct Main {
    static func main() { fuzzMain(fuzzTestOneInput, replaying: fuzzPolicy) }
}
