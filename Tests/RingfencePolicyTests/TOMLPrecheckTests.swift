import Testing

@testable import RingfencePolicy

/// What toml++ would abort on is refused with its position before toml++ sees the text: control
/// characters TOML forbids and table headers without a key (found by FuzzPolicy;
/// Fuzz/regressions/FuzzPolicy/).
@Suite struct TOMLPrecheckTests {
    static func problem(_ text: String) -> String? {
        do {
            _ = try Policy.parse(text, file: "p.toml")
            return nil
        } catch {
            return error.diagnostics.first?.description
        }
    }

    @Test(arguments: [
        ("[\u{1E}daemon]\n", "p.toml:1:2: toml: control character U+001E is not allowed in TOML"),
        ("# ok\nname = \"a\u{01}\"\n", "p.toml:2:10: toml: control character U+0001 is not allowed in TOML"),
        ("# a comment \u{7F}\n", "p.toml:1:13: toml: control character U+007F is not allowed in TOML"),
        ("\u{00}", "p.toml:1:1: toml: control character U+0000 is not allowed in TOML"),
    ])
    func forbiddenControlCharactersAreRefusedWithTheirPosition(text: String, expected: String) {
        #expect(Self.problem(text)?.hasPrefix(expected) == true, "\(Self.problem(text) ?? "accepted")")
    }

    @Test func tabsAndLineEndsAreFine() {
        #expect(TOMLPrecheck.firstProblem(in: "a\t= 1\r\n# x\tb\n") == nil)
    }

    /// toml++ asserted on a table header with no key after its bracket (FuzzPolicy).
    @Test(arguments: [
        ("[   # the API\n", "p.toml:1:1: toml: a table header needs a key after '[' on the same line"),
        ("a = 1\n  [[\n", "p.toml:2:3: toml: a table header needs a key after '[' on the same line"),
        ("[", "p.toml:1:1: toml: a table header needs a key after '[' on the same line"),
    ])
    func tableHeadersWithoutAKeyAreRefusedWithTheirPosition(text: String, expected: String) {
        #expect(Self.problem(text)?.hasPrefix(expected) == true, "\(Self.problem(text) ?? "accepted")")
    }

    @Test func headersWithKeysAndArraysOnOneLineAreLeftToTheParser() {
        for text in ["[ daemon ]\n", "[[ guard ]]\n", "[\"quoted\"]\n", "[[\tguard]]\n", "x = [\n  1, 2,\n]\n", "[]\n"] {
            #expect(TOMLPrecheck.firstProblem(in: text) == nil, "\(text)")
        }
    }
}
