import RingfenceControl
import RingfenceStatus
import Testing

@Suite struct ControlCodecTests {
    @Test func requestsRoundTripInSnakeCase() throws {
        let bytes = ControlCodec.encode(ControlRequest(command: .reload, dryRun: true, policy: "/etc/p.toml"))
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text == #"{"command":"reload","dry_run":true,"policy":"\/etc\/p.toml","version":1}"# + "\n")
        #expect(try ControlCodec.request(from: bytes.dropLast()) == ControlRequest(command: .reload, dryRun: true, policy: "/etc/p.toml"))
    }

    @Test(arguments: [
        ("hello", "bad-request"),
        (#"{"command":"status"}"#, "bad-request"),
        (#"{"version":2,"command":"status"}"#, "unsupported-version"),
        (#"{"version":1,"command":"explode"}"#, "bad-request"),
        (#"{"version":1,"command":"reload","dry_run":"yes"}"#, "bad-request"),
        (#"[1,2,3]"#, "bad-request"),
    ])
    func badRequestsAreTypedErrors(text: String, code: String) {
        #expect {
            _ = try ControlCodec.request(from: Array(text.utf8))
        } throws: { error in
            (error as? ControlError)?.code.rawValue == code
        }
    }

    @Test func repliesCarryErrorsAndReports() throws {
        let reply = ControlReply.failure(ControlError(code: .policyRefused, message: "m", details: ["p.toml:1:2: guard: x"]))
        let decoded = try ControlCodec.decode(ControlReply.self, from: ControlCodec.encode(reply))
        #expect(decoded == reply)
        let cut = ReloadReport.Cut(guardName: "bus", id: 3, peer: "10.0.0.2", port: 4000, reason: .notAllowed)
        let text = String(decoding: ControlCodec.encode(cut), as: UTF8.self)
        #expect(text.contains(#""guard":"bus""#))
    }
}
