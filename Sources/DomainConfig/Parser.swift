/// Expressions of the supported subset. Every node keeps the location of
/// its first token (operators keep the operator's) for error messages.
indirect enum Expression {
    case integer(Int, SourceLocation)
    case string(String, SourceLocation)
    case none(SourceLocation)
    case name(String, SourceLocation)
    case list([Expression], SourceLocation)
    case tuple([Expression], SourceLocation)
    case unary(UnaryOperator, Expression, SourceLocation)
    case binary(BinaryOperator, Expression, Expression, SourceLocation)
    case call(String, [Expression], SourceLocation)

    var location: SourceLocation {
        switch self {
        case .integer(_, let location), .string(_, let location), .none(let location),
            .name(_, let location), .list(_, let location), .tuple(_, let location),
            .unary(_, _, let location), .call(_, _, let location):
            return location
        case .binary(_, let left, _, _):
            return left.location
        }
    }
}

enum UnaryOperator: String {
    case plus = "+"
    case minus = "-"
}

enum BinaryOperator: String {
    case add = "+"
    case subtract = "-"
    case multiply = "*"
    case divide = "/"
    case floorDivide = "//"
    case modulo = "%"
}

/// `target = value`, `a = b = value` or `target op= value`.
struct Statement {
    struct Target {
        var name: String
        var location: SourceLocation
    }

    var targets: [Target]
    /// Set for augmented assignment (`+=` and friends).
    var augmented: BinaryOperator?
    var value: Expression
}

/// Recursive-descent parser over the lexer's tokens, following Python's
/// grammar and precedence for the subset: assignment statements whose
/// right-hand sides use literals, names, lists, tuples, `+ - * / // %`,
/// unary `+ -` and the builtins `int()` and `str()`.
struct Parser {
    private let tokens: [Token]
    private var position = 0

    private static let keywords: Set<String> = [
        "and", "as", "assert", "break", "class", "continue", "def", "del", "elif", "else",
        "except", "exec", "finally", "for", "from", "global", "if", "import", "in", "is",
        "lambda", "not", "or", "print", "raise", "return", "try", "while", "with", "yield",
        "nonlocal", "async", "await",
    ]

    static let builtins: Set<String> = ["int", "str"]

    init(tokens: [Token]) {
        self.tokens = tokens
    }

    static func parse(_ bytes: [UInt8], file: String) throws(DomainConfigError) -> [Statement] {
        var parser = Parser(tokens: try Lexer.tokenize(bytes, file: file))
        return try parser.statements()
    }

    private var current: Token { tokens[position] }

    private mutating func advance() -> Token {
        let token = tokens[position]
        if position < tokens.count - 1 { position += 1 }
        return token
    }

    private func isOp(_ text: String) -> Bool {
        current.kind == .op(text)
    }

    private mutating func expect(_ text: String, _ context: String) throws(DomainConfigError) {
        guard isOp(text) else {
            throw .syntax(
                current.location, "expected '\(text)' \(context), found \(describe(current))")
        }
        _ = advance()
    }

    private func describe(_ token: Token) -> String {
        switch token.kind {
        case .name(let name): return "'\(name)'"
        case .integer(let value): return "number \(value)"
        case .string: return "a string"
        case .op(let text): return "'\(text)'"
        case .newline: return "end of line"
        case .end: return "end of file"
        }
    }

    private mutating func statements() throws(DomainConfigError) -> [Statement] {
        var result: [Statement] = []
        while current.kind != .end {
            if current.kind == .newline {
                _ = advance()
                continue
            }
            if let statement = try statement() { result.append(statement) }
            if isOp(";") {
                _ = advance()
                continue
            }
            guard current.kind == .newline || current.kind == .end else {
                throw .syntax(current.location, "unexpected \(describe(current)) after statement")
            }
        }
        return result
    }

    /// One simple statement; `nil` for `pass`.
    private mutating func statement() throws(DomainConfigError) -> Statement? {
        let first = current
        if case .name(let word) = first.kind, Self.keywords.contains(word) || word == "pass" {
            if word == "pass" {
                _ = advance()
                return nil
            }
            throw .syntax(
                first.location,
                "'\(word)' is not supported: xm configs here may only assign values "
                    + "(name = expression)")
        }
        var targets: [Statement.Target] = []
        var expression = try testList()
        while true {
            if isOp("=") {
                let equals = advance()
                targets.append(try target(expression, at: equals.location))
                expression = try testList()
                continue
            }
            if case .op(let text) = current.kind, text.count >= 2, text.hasSuffix("="),
                !["==", "!=", "<=", ">="].contains(text)
            {
                let token = advance()
                guard targets.isEmpty else {
                    throw .syntax(token.location, "'\(text)' cannot follow another assignment")
                }
                guard let op = BinaryOperator(rawValue: String(text.dropLast())) else {
                    throw .syntax(token.location, "operator '\(text)' is not supported")
                }
                let target = try target(expression, at: token.location)
                let value = try testList()
                return Statement(targets: [target], augmented: op, value: value)
            }
            break
        }
        guard !targets.isEmpty else {
            throw .syntax(
                first.location,
                "expected an assignment (name = value); bare expressions and calls are "
                    + "not supported")
        }
        return Statement(targets: targets, augmented: nil, value: expression)
    }

    private func target(_ expression: Expression, at location: SourceLocation)
        throws(DomainConfigError) -> Statement.Target
    {
        guard case .name(let name, let nameLocation) = expression else {
            throw .syntax(
                expression.location,
                "can only assign to a plain name (no tuple unpacking, items or attributes)")
        }
        if name == "None" { throw .syntax(nameLocation, "cannot assign to None") }
        return Statement.Target(name: name, location: nameLocation)
    }

    /// `a` or `a, b, ...` (a bare tuple, as Python allows on the right of `=`).
    private mutating func testList() throws(DomainConfigError) -> Expression {
        let first = try arithmetic()
        guard isOp(",") else { return first }
        var items = [first]
        while isOp(",") {
            _ = advance()
            if startsExpression() {
                items.append(try arithmetic())
            } else {
                break
            }
        }
        return .tuple(items, first.location)
    }

    private func startsExpression() -> Bool {
        switch current.kind {
        case .name(let word): return !Self.keywords.contains(word)
        case .integer, .string: return true
        case .op(let text): return ["(", "[", "+", "-", "{", "`", "~"].contains(text)
        case .newline, .end: return false
        }
    }

    private mutating func arithmetic() throws(DomainConfigError) -> Expression {
        var left = try term()
        while case .op(let text) = current.kind, text == "+" || text == "-" {
            let token = advance()
            let right = try term()
            left = .binary(BinaryOperator(rawValue: text) ?? .add, left, right, token.location)
        }
        try rejectUnsupportedOperator()
        return left
    }

    private mutating func term() throws(DomainConfigError) -> Expression {
        var left = try factor()
        while case .op(let text) = current.kind, let op = BinaryOperator(rawValue: text),
            op != .add && op != .subtract
        {
            let token = advance()
            let right = try factor()
            left = .binary(op, left, right, token.location)
        }
        return left
    }

    private mutating func factor() throws(DomainConfigError) -> Expression {
        if case .op(let text) = current.kind, let op = UnaryOperator(rawValue: text) {
            let token = advance()
            return .unary(op, try factor(), token.location)
        }
        let value = try primary()
        if isOp("**") { throw .syntax(current.location, "the power operator ** is not supported") }
        return value
    }

    /// Comparison, bitwise and boolean operators are outside the subset; say
    /// so instead of a vague "unexpected token".
    private func rejectUnsupportedOperator() throws(DomainConfigError) {
        switch current.kind {
        case .op(let text)
        where ["==", "!=", "<", ">", "<=", ">=", "<>", "&", "|", "^", "<<", ">>", "~"]
            .contains(text):
            throw .syntax(current.location, "operator '\(text)' is not supported")
        case .name(let word) where ["and", "or", "not", "in", "is", "if", "for"].contains(word):
            throw .syntax(current.location, "'\(word)' is not supported in expressions")
        default:
            return
        }
    }

    private mutating func primary() throws(DomainConfigError) -> Expression {
        let token = advance()
        let location = token.location
        let atom: Expression
        switch token.kind {
        case .integer(let value):
            atom = .integer(value, location)
        case .string(let text):
            // Adjacent literals concatenate at compile time: "a" 'b' == "ab".
            var joined = text
            while case .string(let more) = current.kind {
                joined += more
                _ = advance()
            }
            atom = .string(joined, location)
        case .name(let name):
            if Self.keywords.contains(name) {
                throw .syntax(location, "'\(name)' is not supported in expressions")
            }
            if name == "None" {
                atom = .none(location)
            } else if isOp("(") {
                atom = try call(name, at: location)
            } else {
                atom = .name(name, location)
            }
        case .op("("):
            if isOp(")") {
                _ = advance()
                atom = .tuple([], location)
            } else {
                let inner = try testList()
                try expect(")", "to close '(' opened at \(location)")
                if case .tuple(let items, _) = inner {
                    atom = .tuple(items, location)
                } else {
                    atom = inner
                }
            }
        case .op("["):
            var items: [Expression] = []
            while !isOp("]") {
                items.append(try arithmetic())
                if isOp(",") {
                    _ = advance()
                } else if !isOp("]") {
                    if case .name("for") = current.kind {
                        throw .syntax(current.location, "list comprehensions are not supported")
                    }
                    throw .syntax(
                        current.location,
                        "expected ',' or ']' in list opened at \(location), found "
                            + describe(current))
                }
            }
            _ = advance()
            atom = .list(items, location)
        case .op("{"):
            throw .syntax(location, "dictionaries and sets are not supported")
        case .op("`"):
            throw .syntax(location, "backquote repr is not supported")
        case .newline, .end:
            throw .syntax(location, "expected a value, found \(describe(token))")
        default:
            throw .syntax(location, "expected a value, found \(describe(token))")
        }
        switch current.kind {
        case .op("."):
            throw .syntax(current.location, "attribute access ('.') is not supported")
        case .op("["):
            throw .syntax(current.location, "indexing and slicing are not supported")
        case .op("("):
            throw .syntax(current.location, "only the builtins int() and str() can be called")
        default:
            return atom
        }
    }

    private mutating func call(_ name: String, at location: SourceLocation)
        throws(DomainConfigError) -> Expression
    {
        guard Self.builtins.contains(name) else {
            throw .syntax(
                location, "'\(name)()' is not supported (only int() and str() can be called)")
        }
        _ = advance()  // (
        var arguments: [Expression] = []
        while !isOp(")") {
            arguments.append(try arithmetic())
            if isOp(",") {
                _ = advance()
            } else if !isOp(")") {
                throw .syntax(current.location, "expected ',' or ')' in call to \(name)()")
            }
        }
        _ = advance()
        return .call(name, arguments, location)
    }
}
