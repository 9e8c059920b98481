import Testing

@testable import RingfencePolicy

@Suite struct SourceLocatorTests {
    static let text = """
        # comment [not a table]
        [firewall]
          table = "x"   # trailing
        "quoted key" = 1
        a.b = 2

        [[guard]]
        name = "one"
        allow = [
            "10.0.0.1", # first, with a ] inside "
            '10.0.0.2',
            [1, 2], "after,nested",
        ]
        doc = \"\"\"
        looks = ["like", "a key"]
        \"\"\"
        [[guard]]
        name = "two"
        allow = ["a", "b"]
        """

    @Test(arguments: [
        ("firewall", 2, 1),
        ("firewall.table", 3, 3),
        ("firewall.quoted key", 4, 1),
        ("firewall.a.b", 5, 1),
        ("guard[0]", 7, 1),
        ("guard[0].name", 8, 1),
        ("guard[0].allow", 9, 1),
        ("guard[0].allow[0]", 10, 5),
        ("guard[0].allow[1]", 11, 5),
        ("guard[0].allow[2]", 12, 5),
        ("guard[0].allow[3]", 12, 13),
        ("guard[1]", 17, 1),
        ("guard[1].allow[1]", 19, 15),
        // Unknown paths fall back to the nearest enclosing key.
        ("guard[1].allow[7]", 19, 1),
        ("guard[1].missing", 17, 1),
    ])
    func finds(path: String, line: Int, column: Int) {
        let position = SourceLocator(text: Self.text).position(of: path)
        #expect(position == SourceLocator.Position(line: line, column: column))
    }

    @Test func multiLineStringsHideTheirContent() {
        #expect(SourceLocator(text: Self.text).position(of: "guard[0].looks") == SourceLocator.Position(line: 7, column: 1))
    }

    @Test func unknownTopLevelPathHasNoPosition() {
        #expect(SourceLocator(text: Self.text).position(of: "daemon.control_socket") == nil)
    }
}
