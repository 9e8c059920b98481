/// What the policy text must not hold before it reaches toml++, whose parser asserts, aborting
/// the whole process, on inputs it assumes it never sees (found by fuzzing the policy parser:
/// docs/reliability.md, Fuzz/regressions/FuzzPolicy/). Each finding is refused with its position,
/// as every other policy error is:
/// - a control character TOML forbids (U+0000–U+0008, U+000B–U+001F but carriage return,
///   U+007F): TOML 1.0 forbids them everywhere, comments and strings included (a string spells
///   them as escapes); toml++ asserted on U+001E inside a table header;
/// - a table header whose `[` or `[[` (the first thing on its line) is not followed, after
///   spaces, by a key (a letter, digit, `_`, `-` or a quote) or `]`: toml++ asserted on `[  #`
///   and on a `[` alone on its line. A nested array written over several lines with a line that
///   starts with `[` and no value after it is refused too (valid TOML, and no policy key takes
///   one).
enum TOMLPrecheck {
    /// The first problem: its line and column (1-based, in Unicode scalars) and what it is.
    static func firstProblem(in text: String) -> (line: Int, column: Int, message: String)? {
        var line = 1
        var column = 1
        var lineStart = true
        var afterBracket: (line: Int, column: Int, bracketsSeen: Int)?
        for scalar in text.unicodeScalars {
            let value = scalar.value
            if let pending = afterBracket {
                if value == 0x5B, pending.bracketsSeen == 1, column == pending.column + 1 {
                    afterBracket = (pending.line, pending.column, 2)
                    column += 1
                    continue
                }
                if value == 0x20 || value == 0x09 {
                    column += 1
                    continue
                }
                // A forbidden control character is reported as such, below.
                if !isKeyStart(value) && !isForbiddenControl(value) {
                    return (pending.line, pending.column, "a table header needs a key after '[' on the same line")
                }
                afterBracket = nil
            }
            switch value {
            case 0x0A:
                line += 1
                column = 1
                lineStart = true
                continue
            case 0x09, 0x0D, 0x20:
                break
            case _ where isForbiddenControl(value):
                let hex = String(value, radix: 16, uppercase: true)
                let code = "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
                return (line, column, "control character \(code) is not allowed in TOML (write it as an escape inside a string)")
            case 0x5B where lineStart:
                afterBracket = (line, column, 1)
                lineStart = false
            default:
                lineStart = false
            }
            column += 1
        }
        if let pending = afterBracket {
            return (pending.line, pending.column, "a table header needs a key after '[' on the same line")
        }
        return nil
    }

    private static func isForbiddenControl(_ value: UInt32) -> Bool {
        (value <= 0x1F && value != 0x09 && value != 0x0A && value != 0x0D) || value == 0x7F
    }

    /// A letter, digit, `_`, `-`, a quote, or `]` (toml++ reports an empty header itself).
    private static func isKeyStart(_ value: UInt32) -> Bool {
        switch value {
        case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, 0x5F, 0x2D, 0x22, 0x27, 0x5D: return true
        default: return false
        }
    }
}
