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
    /// A builtin (`int`, `str`) or a function defined with `def`.
    case call(String, [Expression], SourceLocation)
    /// `xm_vars.var(...)` or `xm_vars.check()`: the method, positional and
    /// keyword arguments.
    case xmVars(String, [Expression], [(name: String, value: Expression)], SourceLocation)
    /// Conditions of `if`/`elif` only: comparisons, `not`, `and`, `or`.
    case compare(CompareOperator, Expression, Expression, SourceLocation)
    case not(Expression, SourceLocation)
    case logical(and: Bool, Expression, Expression, SourceLocation)

    var location: SourceLocation {
        switch self {
        case .integer(_, let location), .string(_, let location), .none(let location),
            .name(_, let location), .list(_, let location), .tuple(_, let location),
            .unary(_, _, let location), .call(_, _, let location),
            .xmVars(_, _, _, let location), .not(_, let location):
            return location
        case .binary(_, let left, _, _), .compare(_, let left, _, _),
            .logical(_, let left, _, _):
            return left.location
        }
    }
}

enum CompareOperator: String {
    case equal = "=="
    case notEqual = "!="
    case less = "<"
    case lessOrEqual = "<="
    case greater = ">"
    case greaterOrEqual = ">="
    case isSame = "is"
    case isNotSame = "is not"
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
struct Assignment {
    struct Target {
        var name: String
        var location: SourceLocation
    }

    var targets: [Target]
    /// Set for augmented assignment (`+=` and friends).
    var augmented: BinaryOperator?
    var value: Expression
}

/// A function defined with `def` (as xmexample2's `vmid_check`).
struct FunctionDefinition {
    var name: String
    var parameters: [String]
    var body: [Statement]
    var location: SourceLocation
    /// Its parameters and every name it assigns: Python makes these local
    /// in the whole body (reading one before it is set is an error, not
    /// the file's variable of that name).
    var locals: Set<String>

    /// The names a block assigns, its nested `if` blocks included.
    static func assignedNames(_ statements: [Statement]) -> Set<String> {
        var names: Set<String> = []
        for statement in statements {
            switch statement {
            case .assignment(let assignment):
                names.formUnion(assignment.targets.map(\.name))
            case .conditional(let branches, let otherwise):
                for branch in branches { names.formUnion(assignedNames(branch.body)) }
                names.formUnion(assignedNames(otherwise))
            case .expression, .function, .returnValue, .raise:
                break
            }
        }
        return names
    }
}

/// One statement of the subset.
indirect enum Statement {
    case assignment(Assignment)
    /// A call whose value is dropped (`xm_vars.check()`).
    case expression(Expression)
    /// `if` with its `elif`s in order, then the `else` body (maybe empty).
    case conditional([(condition: Expression, body: [Statement])], otherwise: [Statement])
    case function(FunctionDefinition)
    case returnValue(Expression?, SourceLocation)
    /// `raise Name`, `raise Name("message")` or Python 2's `raise Name, "message"`.
    case raise(exception: String, message: Expression?, SourceLocation)
}

/// Recursive-descent parser over the lexer's tokens, following Python's
/// grammar and precedence for the subset xm configs use, Xen's own
/// examples included: assignments whose right-hand sides use literals,
/// names, lists, tuples, `+ - * / // %` (integers and `%` formatting),
/// unary `+ -`, the builtins `int()` and `str()`; `def` with `if`/`elif`/
/// `else`, `return` and `raise` in it; calls of the functions defined;
/// `xm_vars.var(...)` and `xm_vars.check()`. Anything else is refused with
/// its name and line, never read as something it is not.
struct Parser {
    private let tokens: [Token]
    private var position = 0
    /// Functions defined so far: only these (and the builtins) can be called.
    private var functionNames: Set<String> = []
    /// Inside a `def` body (`return` allowed, no nested `def`).
    private var inFunction = false
    /// Inside an `if`/`elif` condition (comparisons and boolean operators allowed).
    private var inCondition = false

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
        case .indent: return "an indented line"
        case .dedent: return "the end of a block"
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
            result += try line()
        }
        return result
    }

    /// One line: a compound statement (`if`, `def`) with its block, or
    /// simple statements separated by `;`.
    private mutating func line() throws(DomainConfigError) -> [Statement] {
        if current.kind == .indent {
            throw .syntax(
                current.location, "unexpected indent (only the body of a def or if is indented)")
        }
        if current.kind == .dedent {
            throw .syntax(current.location, "unexpected end of a block")
        }
        if case .name(let word) = current.kind {
            switch word {
            case "if": return [try conditional()]
            case "def": return [try function()]
            case "elif", "else":
                throw .syntax(current.location, "'\(word)' without an 'if' before it")
            default: break
            }
        }
        return try simpleStatements()
    }

    /// `a; b; c` up to the end of the line.
    private mutating func simpleStatements() throws(DomainConfigError) -> [Statement] {
        var result: [Statement] = []
        while true {
            if let statement = try statement() { result.append(statement) }
            if isOp(";") {
                _ = advance()
                if current.kind == .newline || current.kind == .end { break }
                continue
            }
            break
        }
        guard current.kind == .newline || current.kind == .end else {
            throw .syntax(current.location, "unexpected \(describe(current)) after statement")
        }
        if current.kind == .newline { _ = advance() }
        return result
    }

    /// The body after a `:`: statements on the same line, or an indented block.
    private mutating func block(of keyword: String, at location: SourceLocation)
        throws(DomainConfigError) -> [Statement]
    {
        try expect(":", "after '\(keyword)' at \(location)")
        guard current.kind == .newline else { return try simpleStatements() }
        _ = advance()
        guard current.kind == .indent else {
            throw .syntax(location, "'\(keyword)' needs an indented block on the next line")
        }
        _ = advance()
        var body: [Statement] = []
        while current.kind != .dedent && current.kind != .end {
            if current.kind == .newline {
                _ = advance()
                continue
            }
            body += try line()
        }
        if current.kind == .dedent { _ = advance() }
        return body
    }

    /// `if C: ... elif C: ... else: ...`
    private mutating func conditional() throws(DomainConfigError) -> Statement {
        var branches: [(condition: Expression, body: [Statement])] = []
        var otherwise: [Statement] = []
        var keyword = advance()  // if
        while true {
            let condition = try self.condition()
            branches.append((condition, try block(of: "if", at: keyword.location)))
            if case .name("elif") = current.kind {
                keyword = advance()
                continue
            }
            if case .name("else") = current.kind {
                let word = advance()
                otherwise = try block(of: "else", at: word.location)
            }
            return .conditional(branches, otherwise: otherwise)
        }
    }

    /// `def name(a, b): ...` at the top level of the file.
    private mutating func function() throws(DomainConfigError) -> Statement {
        let keyword = advance()  // def
        if inFunction {
            throw .syntax(keyword.location, "a 'def' inside a function is not supported")
        }
        guard case .name(let name) = current.kind, !Self.keywords.contains(name) else {
            throw .syntax(current.location, "expected a function name after 'def'")
        }
        _ = advance()
        try expect("(", "after 'def \(name)'")
        var parameters: [String] = []
        while !isOp(")") {
            guard case .name(let parameter) = current.kind, !Self.keywords.contains(parameter)
            else {
                throw .syntax(
                    current.location,
                    "expected a parameter name in 'def \(name)' (defaults, *args and **kwargs "
                        + "are not supported)")
            }
            if parameters.contains(parameter) {
                throw .syntax(current.location, "duplicate parameter '\(parameter)'")
            }
            parameters.append(parameter)
            _ = advance()
            if isOp(",") {
                _ = advance()
            } else if !isOp(")") {
                throw .syntax(
                    current.location,
                    "expected ',' or ')' in 'def \(name)' (defaults, *args and **kwargs are "
                        + "not supported), found \(describe(current))")
            }
        }
        _ = advance()
        // Defined before its body is read, so the body may call itself.
        functionNames.insert(name)
        inFunction = true
        defer { inFunction = false }
        let body = try block(of: "def", at: keyword.location)
        return .function(
            FunctionDefinition(
                name: name, parameters: parameters, body: body, location: keyword.location,
                locals: Set(parameters).union(FunctionDefinition.assignedNames(body))))
    }

    /// One simple statement; `nil` for `pass`.
    private mutating func statement() throws(DomainConfigError) -> Statement? {
        let first = current
        if case .name(let word) = first.kind, Self.keywords.contains(word) || word == "pass" {
            switch word {
            case "pass":
                _ = advance()
                return nil
            case "return":
                _ = advance()
                guard inFunction else {
                    throw .syntax(first.location, "'return' outside a function")
                }
                let value = startsExpression() ? try testList() : nil
                return .returnValue(value, first.location)
            case "raise":
                return try raise()
            default:
                throw .syntax(
                    first.location,
                    "'\(word)' is not supported: xm configs here may assign values, use def, "
                        + "if, return and raise, and call xm_vars.var() and xm_vars.check()")
            }
        }
        var targets: [Assignment.Target] = []
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
                return .assignment(Assignment(targets: [target], augmented: op, value: value))
            }
            break
        }
        guard !targets.isEmpty else {
            switch expression {
            case .call, .xmVars:
                return .expression(expression)
            default:
                throw .syntax(
                    first.location,
                    "expected an assignment (name = value); bare expressions are not supported")
            }
        }
        return .assignment(Assignment(targets: targets, augmented: nil, value: expression))
    }

    /// `raise Name`, `raise Name(message)`, `raise Name, message`.
    private mutating func raise() throws(DomainConfigError) -> Statement {
        let keyword = advance()
        guard case .name(let exception) = current.kind, !Self.keywords.contains(exception) else {
            throw .syntax(
                keyword.location,
                "'raise' needs an exception name here (raise ValueError or "
                    + "raise ValueError(\"why\"))")
        }
        _ = advance()
        var message: Expression?
        if isOp("(") {
            _ = advance()
            if !isOp(")") { message = try arithmetic() }
            try expect(")", "to close the arguments of \(exception)")
        } else if isOp(",") {
            _ = advance()
            message = try arithmetic()
        }
        return .raise(exception: exception, message: message, keyword.location)
    }

    /// An `if`/`elif` condition: `or` of `and` of `not` of comparisons.
    private mutating func condition() throws(DomainConfigError) -> Expression {
        let outer = inCondition
        inCondition = true
        defer { inCondition = outer }
        var left = try conjunction()
        while case .name("or") = current.kind {
            _ = advance()
            left = .logical(and: false, left, try conjunction(), left.location)
        }
        return left
    }

    private mutating func conjunction() throws(DomainConfigError) -> Expression {
        var left = try negation()
        while case .name("and") = current.kind {
            _ = advance()
            left = .logical(and: true, left, try negation(), left.location)
        }
        return left
    }

    private mutating func negation() throws(DomainConfigError) -> Expression {
        if case .name("not") = current.kind {
            let token = advance()
            return .not(try negation(), token.location)
        }
        return try comparison()
    }

    /// `a < b`, chained as Python does (`a < b < c` is `a < b and b < c`).
    private mutating func comparison() throws(DomainConfigError) -> Expression {
        let first = try arithmetic()
        var result: Expression?
        var left = first
        while let op = try compareOperator() {
            let right = try arithmetic()
            let pair = Expression.compare(op, left, right, left.location)
            result = result.map { .logical(and: true, $0, pair, first.location) } ?? pair
            left = right
        }
        if case .name(let word) = current.kind, word == "in" {
            throw .syntax(current.location, "'in' is not supported in conditions")
        }
        return result ?? first
    }

    private mutating func compareOperator() throws(DomainConfigError) -> CompareOperator? {
        switch current.kind {
        case .op("<>"):
            _ = advance()
            return .notEqual
        case .op(let text):
            guard let op = CompareOperator(rawValue: text) else { return nil }
            _ = advance()
            return op
        case .name("is"):
            _ = advance()
            if case .name("not") = current.kind {
                _ = advance()
                return .isNotSame
            }
            return .isSame
        default:
            return nil
        }
    }

    private func target(_ expression: Expression, at location: SourceLocation)
        throws(DomainConfigError) -> Assignment.Target
    {
        guard case .name(let name, let nameLocation) = expression else {
            throw .syntax(
                expression.location,
                "can only assign to a plain name (no tuple unpacking, items or attributes)")
        }
        if name == "None" { throw .syntax(nameLocation, "cannot assign to None") }
        return Assignment.Target(name: name, location: nameLocation)
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
        case .newline, .indent, .dedent, .end: return false
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

    /// Bitwise operators are outside the subset, and comparison and boolean
    /// operators outside `if` conditions; say so instead of a vague
    /// "unexpected token".
    private func rejectUnsupportedOperator() throws(DomainConfigError) {
        if inCondition {
            switch current.kind {
            case .op(let text) where CompareOperator(rawValue: text) != nil || text == "<>":
                return
            case .name(let word) where ["and", "or", "is"].contains(word):
                return
            default:
                break
            }
        }
        switch current.kind {
        case .op(let text)
        where ["==", "!=", "<", ">", "<=", ">=", "<>", "&", "|", "^", "<<", ">>", "~"]
            .contains(text):
            throw .syntax(
                current.location,
                "operator '\(text)' is not supported"
                    + (inCondition ? "" : " (comparisons only in an if condition)"))
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
            } else if name == "xm_vars" && isOp(".") {
                atom = try xmVars(at: location)
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
            throw .syntax(
                current.location,
                "attribute access ('.') is not supported (only xm_vars.var() and xm_vars.check())")
        case .op("["):
            throw .syntax(current.location, "indexing and slicing are not supported")
        case .op("("):
            throw .syntax(
                current.location,
                "only int(), str() and functions defined with def can be called, by name")
        default:
            return atom
        }
    }

    private mutating func call(_ name: String, at location: SourceLocation)
        throws(DomainConfigError) -> Expression
    {
        // Inside a function a call is resolved when it runs, so a function
        // may call one defined after it (as Python allows).
        guard Self.builtins.contains(name) || functionNames.contains(name) || inFunction else {
            throw .syntax(
                location,
                "'\(name)()' is not supported (only int(), str() and functions defined above "
                    + "with def can be called)")
        }
        let (arguments, keywords) = try arguments(of: "\(name)()")
        if !keywords.isEmpty {
            throw .syntax(location, "keyword arguments to \(name)() are not supported")
        }
        return .call(name, arguments, location)
    }

    /// `xm_vars.var(...)` or `xm_vars.check()`, the object xm gave every config.
    private mutating func xmVars(at location: SourceLocation) throws(DomainConfigError)
        -> Expression
    {
        _ = advance()  // .
        guard case .name(let method) = current.kind, method == "var" || method == "check" else {
            throw .syntax(
                current.location, "xm_vars has only var() and check(), found \(describe(current))")
        }
        _ = advance()
        guard isOp("(") else {
            throw .syntax(current.location, "xm_vars.\(method) must be called")
        }
        let (arguments, keywords) = try arguments(of: "xm_vars.\(method)()")
        return .xmVars(method, arguments, keywords, location)
    }

    /// `(a, b, key=value)` after a callee; the current token is `(`.
    private mutating func arguments(of callee: String) throws(DomainConfigError) -> (
        [Expression], [(name: String, value: Expression)]
    ) {
        _ = advance()  // (
        var positional: [Expression] = []
        var keywords: [(name: String, value: Expression)] = []
        while !isOp(")") {
            if case .name(let key) = current.kind, position + 1 < tokens.count,
                tokens[position + 1].kind == .op("=")
            {
                _ = advance()
                _ = advance()
                keywords.append((key, try arithmetic()))
            } else if !keywords.isEmpty {
                throw .syntax(current.location, "a positional argument after a keyword argument")
            } else {
                positional.append(try arithmetic())
            }
            if isOp(",") {
                _ = advance()
            } else if !isOp(")") {
                throw .syntax(current.location, "expected ',' or ')' in call to \(callee)")
            }
        }
        _ = advance()
        return (positional, keywords)
    }
}
