/// Finds where a key path (`guard[1].allow[2]`, `firewall.deny`) stands in policy text.
///
/// TOMLKit reports positions only for syntax errors, not for values, so after a document has
/// parsed this scanner walks its lines once: table headers (`[firewall]`, `[[guard]]` counted per
/// name), `key = value` lines (bare, quoted and dotted keys) and the top-level elements of array
/// values, also across lines. It is written by hand because no TOML library available to us keeps
/// value positions. It only ever runs on text that TOMLKit accepted, and when it cannot tell, a
/// diagnostic falls back to the nearest enclosing key and, failing that, carries no position.
public struct SourceLocator: Sendable {
    /// A 1-based line and column (columns count characters).
    public struct Position: Hashable, Sendable {
        public var line: Int
        public var column: Int
    }

    private var positions: [String: Position] = [:]

    public init(text: String) {
        var scanner = Scanner(lines: text.split(separator: "\n", omittingEmptySubsequences: false).map { Array($0) })
        positions = scanner.run()
    }

    /// The position of `path`, or of its nearest enclosing key or table that has one.
    public func position(of path: String) -> Position? {
        var current = Substring(path)
        while !current.isEmpty {
            if let found = positions[String(current)] { return found }
            guard let cut = current.lastIndex(where: { $0 == "." || $0 == "[" }) else { return nil }
            current = current[..<cut]
        }
        return nil
    }

    private struct Scanner {
        let lines: [[Character]]
        var line = 0
        var column = 0
        var table = ""
        var arrayCounts: [String: Int] = [:]
        var found: [String: Position] = [:]

        init(lines: [[Character]]) { self.lines = lines }

        var current: Character? {
            guard line < lines.count, column < lines[line].count else { return nil }
            return lines[line][column]
        }

        var here: Position { Position(line: line + 1, column: column + 1) }

        mutating func record(_ path: String, _ position: Position) {
            if found[path] == nil { found[path] = position }
        }

        mutating func skipSpaces() {
            while let c = current, c == " " || c == "\t" || c == "\r" { column += 1 }
        }

        /// Skips spaces, comments and line ends, as inside an array.
        mutating func skipBlank() {
            while line < lines.count {
                skipSpaces()
                if let c = current, c != "#" { return }
                line += 1
                column = 0
            }
        }

        mutating func run() -> [String: Position] {
            while line < lines.count {
                column = 0
                skipSpaces()
                guard let c = current, c != "#" else {
                    line += 1
                    continue
                }
                if c == "[" {
                    header()
                } else {
                    keyValue()
                }
                line += 1
            }
            return found
        }

        mutating func header() {
            let start = here
            let isArray = column + 1 < lines[line].count && lines[line][column + 1] == "["
            column += isArray ? 2 : 1
            let name = dottedKey(until: "]")
            if isArray {
                let index = arrayCounts[name, default: -1] + 1
                arrayCounts[name] = index
                table = "\(name)[\(index)]"
            } else {
                table = name
            }
            record(table, start)
        }

        mutating func keyValue() {
            let start = here
            let key = dottedKey(until: "=")
            guard current == "=" else { return }
            column += 1
            let path = table.isEmpty ? key : "\(table).\(key)"
            record(path, start)
            skipSpaces()
            if current == "[" {
                array(path)
            } else {
                skipValue()  // leaves a multi-line string's last line as the current one
            }
        }

        /// Reads `a.b."c d"` up to `terminator`, leaving the scanner on it.
        mutating func dottedKey(until terminator: Character) -> String {
            var parts: [String] = []
            var part = ""
            while let c = current, c != terminator {
                if c == "\"" || c == "'" {
                    part += quoted()
                    continue
                }
                if c == "." {
                    parts.append(part)
                    part = ""
                } else if c != " " && c != "\t" {
                    part.append(c)
                }
                column += 1
            }
            parts.append(part)
            return parts.joined(separator: ".")
        }

        /// Reads a one-line quoted string, returning its raw content (escapes kept as written).
        mutating func quoted() -> String {
            guard let quote = current else { return "" }
            column += 1
            var content = ""
            while let c = current, c != quote {
                if c == "\\" && quote == "\"" {
                    column += 1
                }
                if let c = current { content.append(c) }
                column += 1
            }
            column += 1
            return content
        }

        /// Records the position of each top-level element of the array starting here.
        mutating func array(_ path: String) {
            column += 1
            var index = 0
            while line < lines.count {
                skipBlank()
                guard let c = current else { return }
                if c == "]" {
                    column += 1
                    return
                }
                if c == "," {
                    column += 1
                    continue
                }
                record("\(path)[\(index)]", here)
                index += 1
                skipValue()
            }
        }

        /// Skips one value: a string, a nested array or inline table, or a bare scalar.
        mutating func skipValue() {
            guard let c = current else { return }
            if c == "\"" || c == "'" {
                if column + 2 < lines[line].count, lines[line][column + 1] == c, lines[line][column + 2] == c {
                    skipMultilineString(c)
                } else {
                    _ = quoted()
                }
            } else if c == "[" || c == "{" {
                let close: Character = c == "[" ? "]" : "}"
                column += 1
                while line < lines.count {
                    skipBlank()
                    guard let inner = current else { return }
                    if inner == close {
                        column += 1
                        return
                    }
                    if inner == "," {
                        column += 1
                    } else if inner == "=" {
                        column += 1
                    } else {
                        skipValue()
                    }
                }
            } else {
                column += 1  // always make progress, whatever the character
                while let c = current, c != "," && c != "]" && c != "}" && c != "#" && c != " " && c != "=" {
                    column += 1
                }
            }
        }

        mutating func skipMultilineString(_ quote: Character) {
            column += 3
            while line < lines.count {
                while let c = current {
                    if c == "\\" && quote == "\"" {
                        column += 2
                        continue
                    }
                    if c == quote, column + 2 < lines[line].count,
                        lines[line][column + 1] == quote, lines[line][column + 2] == quote
                    {
                        column += 3
                        return
                    }
                    column += 1
                }
                line += 1
                column = 0
            }
        }
    }
}
