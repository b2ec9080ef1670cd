import Testing

@testable import DomainConfig

/// The Python subset: literals, operators, precedence, formatting, and the
/// errors for everything outside it.
@Suite struct LanguageTests {
    // MARK: literals

    @Test func stringQuotesAndEscapes() throws {
        #expect(try value(of: "a", in: #"a = 'it''s'"#) == .string("its"))
        #expect(try value(of: "a", in: #"a = "it's""#) == .string("it's"))
        #expect(
            try value(of: "a", in: #"a = 'tab\there\nnl \'q\' \"d\" \\ \x41\101\0'"#)
                == .string("tab\there\nnl 'q' \"d\" \\ AA\u{0}"))
        // Unknown escapes stay as written, as in Python.
        #expect(try value(of: "a", in: #"a = '\d\w'"#) == .string(#"\d\w"#))
        // Raw strings keep backslashes.
        #expect(try value(of: "a", in: #"a = r'\n\x'"#) == .string(#"\n\x"#))
        #expect(try value(of: "a", in: #"a = u'x' + b"y""#) == .string("xy"))
    }

    @Test func tripleQuotedStrings() throws {
        let text = "a = '''one\n'two'\nthree'''\nb = \"\"\"x\"y\"\"\"\n"
        #expect(try value(of: "a", in: text) == .string("one\n'two'\nthree"))
        #expect(try value(of: "b", in: text) == .string("x\"y"))
    }

    @Test func adjacentStringsConcatenate() throws {
        #expect(
            try value(of: "a", in: "a = ('root=/dev/sda1 '\n     'ro')")
                == .string("root=/dev/sda1 ro"))
    }

    @Test func integers() throws {
        #expect(try value(of: "a", in: "a = 0x10") == .integer(16))
        #expect(try value(of: "a", in: "a = 0o17") == .integer(15))
        #expect(try value(of: "a", in: "a = 017") == .integer(15))  // Python 2 octal
        #expect(try value(of: "a", in: "a = 0b101") == .integer(5))
        #expect(try value(of: "a", in: "a = 10L") == .integer(10))
        #expect(try value(of: "a", in: "a = 0") == .integer(0))
    }

    @Test func listsAndTuples() throws {
        #expect(try value(of: "a", in: "a = [1, 'x',]") == list(.integer(1), .string("x")))
        #expect(try value(of: "a", in: "a = []") == list())
        #expect(try value(of: "a", in: "a = (1, 2)") == tuple(.integer(1), .integer(2)))
        #expect(try value(of: "a", in: "a = (1,)") == tuple(.integer(1)))
        #expect(try value(of: "a", in: "a = ()") == tuple())
        #expect(try value(of: "a", in: "a = 1, 2") == tuple(.integer(1), .integer(2)))
        #expect(try value(of: "a", in: "a = (3)") == .integer(3))
        #expect(try value(of: "a", in: "a = None") == ConfigValue.none)
    }

    // MARK: statements

    @Test func commentsBlankLinesAndSemicolons() throws {
        let text = """
            # a comment
            a = 1  # trailing comment

            b = 2; c = 3
            \t
            pass
            """
        #expect(try value(of: "a", in: text) == .integer(1))
        #expect(try value(of: "c", in: text) == .integer(3))
    }

    @Test func continuationInsideBracketsAndAfterBackslash() throws {
        let text = """
            disk = [ 'a',
            # a comment inside the list
                  'b'
            ]
            extra = "x" + \\
                "y"
            n = (1 +
              2)
            """
        #expect(try value(of: "disk", in: text) == list(.string("a"), .string("b")))
        #expect(try value(of: "extra", in: text) == .string("xy"))
        #expect(try value(of: "n", in: text) == .integer(3))
    }

    @Test func crlfLineEndings() throws {
        let text = "a = 1\r\nb = [1,\r\n 2]\r\n"
        #expect(try value(of: "b", in: text) == list(.integer(1), .integer(2)))
    }

    @Test func chainedAssignmentAndReferences() throws {
        let text = "a = b = 'x'\nc = a + b\n"
        #expect(try value(of: "b", in: text) == .string("x"))
        #expect(try value(of: "c", in: text) == .string("xx"))
    }

    @Test func augmentedAssignment() throws {
        let text = """
            s = 'a'
            s += 'b'
            l = ['x']
            l += ['y', 'z']
            l += ('t',)
            n = 10
            n -= 3
            n *= 2
            n //= 4
            n %= 2
            """
        #expect(try value(of: "s", in: text) == .string("ab"))
        #expect(
            try value(of: "l", in: text)
                == list(.string("x"), .string("y"), .string("z"), .string("t")))
        #expect(try value(of: "n", in: text) == .integer(1))
    }

    @Test func valueSemantics() throws {
        let text = "a = ['x']\nb = a\nb += ['y']\n"
        #expect(try value(of: "a", in: text) == list(.string("x")))
    }

    // MARK: arithmetic

    @Test func arithmeticPrecedence() throws {
        #expect(try value(of: "a", in: "a = 2 + 3 * 4") == .integer(14))
        #expect(try value(of: "a", in: "a = (2 + 3) * 4") == .integer(20))
        #expect(try value(of: "a", in: "a = 20 - 5 - 3") == .integer(12))
        #expect(try value(of: "a", in: "a = 100 / 10 / 5") == .integer(2))
        #expect(try value(of: "a", in: "a = -2 * -3") == .integer(6))
        #expect(try value(of: "a", in: "a = 2 * 64 + 1024 // 4 % 5") == .integer(129))
        #expect(try value(of: "a", in: "a = +5 - -5") == .integer(10))
    }

    @Test func divisionFloorsLikePython2() throws {
        #expect(try value(of: "a", in: "a = 7 / 2") == .integer(3))
        #expect(try value(of: "a", in: "a = -7 / 2") == .integer(-4))
        #expect(try value(of: "a", in: "a = -7 // 2") == .integer(-4))
        #expect(try value(of: "a", in: "a = 7 // -2") == .integer(-4))
        #expect(try value(of: "a", in: "a = -7 % 3") == .integer(2))
        #expect(try value(of: "a", in: "a = 7 % -3") == .integer(-2))
    }

    @Test func sequenceOperators() throws {
        #expect(try value(of: "a", in: "a = 'ab' * 3") == .string("ababab"))
        #expect(try value(of: "a", in: "a = 2 * ['']") == list(.string(""), .string("")))
        #expect(try value(of: "a", in: "a = [1] + [2]") == list(.integer(1), .integer(2)))
        #expect(try value(of: "a", in: "a = 'x' * 0") == .string(""))
    }

    @Test func builtins() throws {
        #expect(try value(of: "a", in: "a = 'vm' + str(3)") == .string("vm3"))
        #expect(try value(of: "a", in: "a = int(' 12 ') + 1") == .integer(13))
        #expect(try value(of: "a", in: "a = str([1, 'x'])") == .string("[1, 'x']"))
    }

    // MARK: % formatting

    @Test func percentFormatting() throws {
        #expect(try value(of: "a", in: "a = '%s-%d' % ('vm', 3)") == .string("vm-3"))
        #expect(try value(of: "a", in: "a = 'VM%d' % 7") == .string("VM7"))
        #expect(try value(of: "a", in: "a = 'sda%d' % (7 + 2)") == .string("sda9"))
        #expect(
            try value(
                of: "a", in: "a = '%03d|%-4s|%4s|%x|%X|%#x|%o' % (5, 'ab', 'cd', 255, 255, 255, 8)")
                == .string("005|ab  |  cd|ff|FF|0xff|10"))
        #expect(
            try value(of: "a", in: "a = '%+d %5.3d %.2s %%' % (4, 7, 'xyz')")
                == .string("+4   007 xy %"))
        #expect(try value(of: "a", in: "a = '%r %s' % ('q', None)") == .string("'q' None"))
        #expect(try value(of: "a", in: "a = '%s' % [1, 2]") == .string("[1, 2]"))
        #expect(try value(of: "a", in: "a = '%c%c' % (65, 'b')") == .string("Ab"))
        #expect(try value(of: "a", in: "a = '%-5d|' % -3") == .string("-3   |"))
        #expect(try value(of: "a", in: "a = '%05d' % -3") == .string("-0003"))
    }

    @Test func formattingBindsTighterThanConcatenation() throws {
        #expect(try value(of: "a", in: "a = 'x-' + '%d' % 4 + '-y'") == .string("x-4-y"))
    }

    @Test func formattingErrors() {
        #expect(throws: DomainConfigError.self) { try value(of: "a", in: "a = '%d' % 'x'") }
        #expect(throws: DomainConfigError.self) { try value(of: "a", in: "a = '%s %s' % 'x'") }
        #expect(throws: DomainConfigError.self) { try value(of: "a", in: "a = 'x' % 1") }
        #expect(throws: DomainConfigError.self) { try value(of: "a", in: "a = '%f' % 1") }
        #expect(throws: DomainConfigError.self) { try value(of: "a", in: "a = '%(x)s' % 1") }
        #expect(throws: DomainConfigError.self) { try value(of: "a", in: "a = '%q' % 1") }
        #expect(throws: DomainConfigError.self) { try value(of: "a", in: "a = '%' % 1") }
    }

    // MARK: errors carry file, line, column and key

    @Test func undefinedNameIsReportedAtItsLine() {
        let error = failure(kernelLine + "memory = 64\nname = 'vm%d' % vmid\n")
        #expect(error?.location == SourceLocation(file: "/etc/xen/test", line: 3, column: 17))
        #expect(error?.key == "name")
        #expect(error?.description == "/etc/xen/test:3:17: in 'name': name 'vmid' is not defined")
    }

    @Test func typeErrorIsReportedAtTheOperator() {
        let error = failure("a = 1\nextra = 'x' +\\\n  a\n")
        #expect(error?.location?.line == 2)
        #expect(error?.location?.column == 13)
        #expect(error?.key == "extra")
    }

    @Test func augmentedAssignmentOfUnsetName() {
        let error = failure(kernelLine + "\n\nextra += ',x'\n")
        #expect(error?.location == SourceLocation(file: "/etc/xen/test", line: 4, column: 1))
        #expect(error?.key == "extra")
    }

    @Test func divisionByZero() {
        let error = failure("memory = 64\nmemory = memory / (2 - 2)\n")
        #expect(error?.location?.line == 2)
        #expect(error?.key == "memory")
    }

    @Test func integerOverflowIsAnErrorNotATrap() {
        #expect(failure("a = 9223372036854775807 + 1\n")?.location?.line == 1)
        #expect(failure("a = -(-9223372036854775807 - 1)\n")?.location?.line == 1)
        #expect(failure("a = 99999999999999999999\n") != nil)
        #expect(failure("a = 'x' * 100000000\n") != nil)
    }

    @Test func syntaxErrorsCarryLineAndColumn() {
        let cases: [(String, Int, Int)] = [
            ("a = 1\nb = [1, 2\nc = 3\n", 2, 5),  // the '[' that is never closed
            ("a = 1\n  b = 2\n", 2, 3),  // unexpected indent
            ("a = 'abc\n", 1, 5),  // unterminated string
            ("a = 1\nimport os\n", 2, 1),
            ("a = 1\nif a:\n", 2, 1),
            ("def f():\n", 1, 1),
            ("a = 1.5\n", 1, 5),
            ("a = {'x': 1}\n", 1, 5),
            ("a = b.c\n", 1, 6),
            ("a = b[0]\n", 1, 6),
            ("a = len(b)\n", 1, 5),
            ("a = 1 == 1\n", 1, 7),
            ("a = 2 ** 3\n", 1, 7),
            ("a, b = 1, 2\n", 1, 1),
            ("a\n", 1, 1),
            ("a = )\n", 1, 5),
            ("a = 1 $\n", 1, 7),
            ("a = [1)\n", 1, 7),
            ("a = '\\x4'\n", 1, 6),
            ("a = 1\n\n\nb = 09\n", 4, 5),
            ("x = 1 \\ y\n", 1, 7),
        ]
        for (text, line, column) in cases {
            let error = failure(text)
            guard case .syntax(let location, _)? = error else {
                Issue.record(
                    "expected a syntax error for \(text.debugDescription), got \(String(describing: error))"
                )
                continue
            }
            #expect(location.line == line, "\(text.debugDescription): \(error?.description ?? "")")
            #expect(
                location.column == column, "\(text.debugDescription): \(error?.description ?? "")")
        }
    }

    @Test func unclosedBracketAtEndOfFile() {
        guard case .syntax(let location, let message)? = failure("disk = [ 'a',\n 'b'\n") else {
            Issue.record("expected a syntax error")
            return
        }
        #expect(location.line == 1)
        #expect(location.column == 8)
        #expect(message == "'[' is never closed")
    }

    @Test func booleansAreExplained() {
        let error = failure("vcpus = True\n")
        #expect(error?.description.contains("booleans are not supported") == true)
    }

    @Test func byteOrderMarkAndMissingFinalNewline() throws {
        let text = "\u{FEFF}a = 'x'\nb = a"
        #expect(try value(of: "b", in: text) == .string("x"))
    }
}
