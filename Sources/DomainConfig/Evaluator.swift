/// A variable after the config ran: its value and where it was last set.
struct Variable {
    var value: ConfigValue
    var origin: SettingOrigin
}

/// Executes parsed statements in order, as `execfile` did for xm: names
/// refer to values assigned earlier (or set on the command line), and the
/// final variable table is what the spec is built from.
///
/// Values have value semantics: `a = b; b += [x]` leaves `a` alone, where
/// Python's in-place list `+=` would change both (no real config relies on
/// that aliasing). Inside a function, names assigned there are its own and
/// other names are read from the file's variables.
struct Evaluator {
    /// Longest string or list an expression may build, so a runaway
    /// `"x" * 10**9` fails with a message instead of exhausting memory.
    static let sizeLimit = 1 << 20
    /// Deepest chain of function calls, so runaway recursion fails with a
    /// message instead of exhausting the stack.
    static let callDepthLimit = 32

    /// A variable declared with `xm_vars.var(name, use=..., check=...)`.
    struct DeclaredVariable {
        var name: String
        var use: String?
        var check: String?
        var location: SourceLocation
    }

    private(set) var variables: [String: Variable] = [:]
    /// Names in the order they were first set, for stable warnings.
    private(set) var order: [String] = []
    /// Functions defined with `def` so far.
    private(set) var functions: [String: FunctionDefinition] = [:]
    /// Variables declared through `xm_vars.var`, in order.
    private(set) var declared: [DeclaredVariable] = []
    /// A running function: the names local to it and those set so far.
    private struct Frame {
        var locals: Set<String>
        var values: [String: ConfigValue]
    }

    /// The functions being run, innermost last.
    private var frames: [Frame] = []

    init(predefined: [(name: String, value: ConfigValue, origin: SettingOrigin)] = []) {
        for entry in predefined {
            set(entry.name, Variable(value: entry.value, origin: entry.origin))
        }
    }

    mutating func set(_ name: String, _ variable: Variable) {
        if variables[name] == nil { order.append(name) }
        variables[name] = variable
    }

    mutating func run(_ statements: [Statement]) throws(DomainConfigError) {
        if case .returned(_, let location) = try execute(statements) {
            // The parser refuses `return` outside a function.
            throw .evaluation(location, key: nil, "'return' outside a function")
        }
    }

    /// How a block ended: at its end, or at a `return`.
    private enum Flow {
        case normal
        case returned(ConfigValue, SourceLocation)
    }

    private mutating func execute(_ statements: [Statement]) throws(DomainConfigError) -> Flow {
        for statement in statements {
            if case .returned(let value, let location) = try execute(statement) {
                return .returned(value, location)
            }
        }
        return .normal
    }

    private mutating func execute(_ statement: Statement) throws(DomainConfigError) -> Flow {
        switch statement {
        case .assignment(let assignment):
            try assign(assignment)
        case .expression(let expression):
            _ = try evaluate(expression, key: nil)
        case .conditional(let branches, let otherwise):
            for branch in branches {
                if try evaluate(branch.condition, key: nil).isTruthy {
                    return try execute(branch.body)
                }
            }
            return try execute(otherwise)
        case .function(let definition):
            functions[definition.name] = definition
        case .returnValue(let expression, let location):
            var value = ConfigValue.none
            if let expression { value = try evaluate(expression, key: nil) }
            return .returned(value, location)
        case .raise(let exception, let message, let location):
            var text = exception
            if let message {
                let value = try evaluate(message, key: nil)
                text += ": " + value.pythonStr
            }
            throw .evaluation(location, key: nil, "the config raised \(text)")
        }
        return .normal
    }

    private mutating func assign(_ statement: Assignment) throws(DomainConfigError) {
        let key = statement.targets.first?.name
        var value = try evaluate(statement.value, key: key)
        if let op = statement.augmented, let target = statement.targets.first {
            guard let current = try lookup(target.name, at: target.location, key: target.name)
            else {
                throw .evaluation(
                    target.location, key: target.name,
                    "'\(target.name) \(op.rawValue)= ...' but '\(target.name)' was not set before")
            }
            value = try apply(
                op, current, value, at: target.location, key: target.name, augmented: true)
        }
        for target in statement.targets {
            if frames.isEmpty {
                set(target.name, Variable(value: value, origin: .file(target.location)))
            } else {
                frames[frames.count - 1].values[target.name] = value
            }
        }
    }

    /// A name's value: in a function, its own names are its own (Python's
    /// UnboundLocalError when read before they are set), other names are
    /// the file's.
    private func lookup(_ name: String, at location: SourceLocation, key: String?)
        throws(DomainConfigError) -> ConfigValue?
    {
        if let frame = frames.last, frame.locals.contains(name) {
            guard let value = frame.values[name] else {
                throw .evaluation(
                    location, key: key, "local variable '\(name)' referenced before assignment")
            }
            return value
        }
        return variables[name]?.value
    }

    mutating func evaluate(_ expression: Expression, key: String?) throws(DomainConfigError)
        -> ConfigValue
    {
        switch expression {
        case .integer(let value, _):
            return .integer(value)
        case .string(let text, _):
            return .string(text)
        case .none:
            return .none
        case .name(let name, let location):
            guard let value = try lookup(name, at: location, key: key) else {
                if name == "True" || name == "False" {
                    throw .evaluation(location, key: key, "booleans are not supported; use 1 or 0")
                }
                if functions[name] != nil {
                    throw .evaluation(
                        location, key: key,
                        "'\(name)' is a function: call it, or pass it as check= to xm_vars.var()")
                }
                throw .evaluation(location, key: key, "name '\(name)' is not defined")
            }
            return value
        case .list(let elements, _):
            return .list(try items(elements, key: key))
        case .tuple(let elements, _):
            return .tuple(try items(elements, key: key))
        case .unary(let op, let operand, let location):
            let value = try evaluate(operand, key: key)
            guard case .integer(let integer) = value else {
                throw .evaluation(
                    location, key: key,
                    "bad operand type for unary \(op.rawValue): '\(value.typeName)'")
            }
            if op == .plus { return value }
            let (negated, overflow) = Int(0).subtractingReportingOverflow(integer)
            if overflow { throw .evaluation(location, key: key, "integer overflow") }
            return .integer(negated)
        case .binary(let op, let left, let right, let location):
            let leftValue = try evaluate(left, key: key)
            let rightValue = try evaluate(right, key: key)
            return try apply(op, leftValue, rightValue, at: location, key: key)
        case .call(let name, let arguments, let location):
            if let function = functions[name] {
                var values: [ConfigValue] = []
                for argument in arguments { values.append(try evaluate(argument, key: key)) }
                return try call(function, values, at: location, key: key)
            }
            guard Parser.builtins.contains(name) else {
                throw .evaluation(
                    location, key: key,
                    "\(name)() is not defined (no def \(name) ran before this call)")
            }
            return try builtin(name, arguments, at: location, key: key)
        case .xmVars(let method, let arguments, let keywords, let location):
            return try xmVars(method, arguments, keywords, at: location)
        case .compare(let op, let left, let right, let location):
            let leftValue = try evaluate(left, key: key)
            let rightValue = try evaluate(right, key: key)
            return .integer(try compare(op, leftValue, rightValue, at: location, key: key) ? 1 : 0)
        case .not(let operand, _):
            return .integer(try evaluate(operand, key: key).isTruthy ? 0 : 1)
        case .logical(let isAnd, let left, let right, _):
            // Python returns the deciding operand; in a condition only its
            // truth matters.
            let first = try evaluate(left, key: key)
            if first.isTruthy != isAnd { return first }
            return try evaluate(right, key: key)
        }
    }

    /// Runs a function defined with `def` on argument values.
    private mutating func call(
        _ function: FunctionDefinition, _ arguments: [ConfigValue], at location: SourceLocation,
        key: String?
    ) throws(DomainConfigError) -> ConfigValue {
        guard arguments.count == function.parameters.count else {
            throw .evaluation(
                location, key: key,
                "\(function.name)() takes exactly \(function.parameters.count) arguments "
                    + "(\(arguments.count) given)")
        }
        guard frames.count < Self.callDepthLimit else {
            throw .evaluation(
                location, key: key,
                "functions call each other more than \(Self.callDepthLimit) deep")
        }
        frames.append(
            Frame(
                locals: function.locals,
                values: Dictionary(uniqueKeysWithValues: zip(function.parameters, arguments))))
        defer { frames.removeLast() }
        if case .returned(let value, _) = try execute(function.body) { return value }
        return .none
    }

    /// `xm_vars.var(name, use=..., check=...)` declares a variable;
    /// `xm_vars.check()` runs each declared variable's check function on its
    /// value (None when the command line did not set it) and stores what the
    /// function returns, as xm's `Vars.check` did.
    private mutating func xmVars(
        _ method: String, _ arguments: [Expression],
        _ keywords: [(name: String, value: Expression)], at location: SourceLocation
    ) throws(DomainConfigError) -> ConfigValue {
        if method == "check" {
            guard arguments.isEmpty, keywords.isEmpty else {
                throw .evaluation(location, key: nil, "xm_vars.check() takes no arguments")
            }
            for variable in declared {
                guard let checkName = variable.check, let function = functions[checkName] else {
                    continue
                }
                let current = variables[variable.name]
                let value: ConfigValue
                do {
                    value = try call(
                        function, [.string(variable.name), current?.value ?? .none],
                        at: location, key: variable.name)
                } catch {
                    let given =
                        current.map { "\($0.value.pythonRepr) from \($0.origin)" }
                        ?? "None (not set)"
                    throw .evaluation(
                        error.location ?? location, key: variable.name,
                        "\(checkName)() refused the value \(given): \(error.reason)")
                }
                set(
                    variable.name,
                    Variable(value: value, origin: current?.origin ?? .file(location)))
            }
            return .none
        }
        // var(name, use=None, check=None)
        var slots: [String: Expression] = [:]
        let parameterNames = ["name", "use", "check"]
        guard arguments.count <= parameterNames.count else {
            throw .evaluation(location, key: nil, "xm_vars.var() takes at most 3 arguments")
        }
        for (index, argument) in arguments.enumerated() { slots[parameterNames[index]] = argument }
        for keyword in keywords {
            guard parameterNames.contains(keyword.name), slots[keyword.name] == nil else {
                throw .evaluation(
                    keyword.value.location, key: nil,
                    "xm_vars.var() got an unexpected or repeated argument '\(keyword.name)'")
            }
            slots[keyword.name] = keyword.value
        }
        guard let nameExpression = slots["name"],
            case .string(let name) = try evaluate(nameExpression, key: nil)
        else {
            throw .evaluation(
                location, key: nil, "xm_vars.var() needs the variable's name as a string")
        }
        var use: String?
        if let expression = slots["use"] {
            let value = try evaluate(expression, key: name)
            if case .none = value {} else { use = value.pythonStr }
        }
        var check: String?
        switch slots["check"] {
        case nil, .some(.none):
            break
        case .some(.name(let function, let at)):
            guard functions[function] != nil else {
                throw .evaluation(
                    at, key: name, "check=\(function): no function '\(function)' is defined above")
            }
            check = function
        case .some(let other):
            throw .evaluation(
                other.location, key: name, "check= must name a function defined with def")
        }
        declared.append(DeclaredVariable(name: name, use: use, check: check, location: location))
        return .none
    }

    private func compare(
        _ op: CompareOperator, _ left: ConfigValue, _ right: ConfigValue,
        at location: SourceLocation, key: String?
    ) throws(DomainConfigError) -> Bool {
        switch op {
        case .equal, .isSame: return left == right
        case .notEqual, .isNotSame: return left != right
        default: break
        }
        let order: Int
        switch (left, right) {
        case (.integer(let a), .integer(let b)):
            order = a < b ? -1 : (a == b ? 0 : 1)
        case (.string(let a), .string(let b)):
            // Python compares str byte by byte.
            let (x, y) = (Array(a.utf8), Array(b.utf8))
            order = x.lexicographicallyPrecedes(y) ? -1 : (x == y ? 0 : 1)
        default:
            throw .evaluation(
                location, key: key,
                "cannot order '\(left.typeName)' and '\(right.typeName)' with \(op.rawValue)")
        }
        switch op {
        case .less: return order < 0
        case .lessOrEqual: return order <= 0
        case .greater: return order > 0
        default: return order >= 0
        }
    }

    private mutating func items(_ elements: [Expression], key: String?) throws(DomainConfigError)
        -> [ConfigItem]
    {
        var result: [ConfigItem] = []
        for element in elements {
            result.append(
                ConfigItem(value: try evaluate(element, key: key), location: element.location))
        }
        return result
    }

    private mutating func builtin(
        _ name: String, _ arguments: [Expression], at location: SourceLocation, key: String?
    )
        throws(DomainConfigError) -> ConfigValue
    {
        guard arguments.count == 1 else {
            throw .evaluation(
                location, key: key,
                "\(name)() takes exactly one argument (\(arguments.count) given)")
        }
        let value = try evaluate(arguments[0], key: key)
        switch (name, value) {
        case ("str", _):
            return .string(value.pythonStr)
        case ("int", .integer):
            return value
        case ("int", .string(let text)):
            // Python's int() accepts surrounding whitespace and a sign.
            guard let integer = parseDecimal(text) else {
                throw .evaluation(
                    location, key: key, "invalid literal for int(): \(value.pythonRepr)")
            }
            return .integer(integer)
        default:
            throw .evaluation(
                location, key: key,
                "int() argument must be a string or a number, not '\(value.typeName)'")
        }
    }

    private func apply(
        _ op: BinaryOperator, _ left: ConfigValue, _ right: ConfigValue,
        at location: SourceLocation,
        key: String?, augmented: Bool = false
    ) throws(DomainConfigError) -> ConfigValue {
        func fail(_ message: String) -> DomainConfigError {
            .evaluation(location, key: key, message)
        }
        func unsupported() -> DomainConfigError {
            fail(
                "unsupported operand types for \(op.rawValue): '\(left.typeName)' and "
                    + "'\(right.typeName)'" + hint())
        }
        func hint() -> String {
            switch (left, right) {
            case (.string, .integer), (.integer, .string):
                return " (use str(n) or '%d' % n to put a number into a string)"
            default:
                return ""
            }
        }
        func checked(_ result: (partialValue: Int, overflow: Bool)) throws(DomainConfigError)
            -> ConfigValue
        {
            if result.overflow { throw fail("integer overflow") }
            return .integer(result.partialValue)
        }
        func repeated<T>(_ elements: [T], _ count: Int) throws(DomainConfigError) -> [T] {
            guard count > 0, !elements.isEmpty else { return [] }
            guard elements.count <= Self.sizeLimit / count else {
                throw fail("result of * is too large")
            }
            return Array([[T]](repeating: elements, count: count).joined())
        }
        func concatenated<T>(_ a: [T], _ b: [T]) throws(DomainConfigError) -> [T] {
            guard a.count + b.count <= Self.sizeLimit else {
                throw fail("result of + is too large")
            }
            return a + b
        }

        switch (op, left, right) {
        case (.add, .integer(let a), .integer(let b)):
            return try checked(a.addingReportingOverflow(b))
        case (.add, .string(let a), .string(let b)):
            return .string(
                String(decoding: try concatenated(Array(a.utf8), Array(b.utf8)), as: UTF8.self))
        case (.add, .list(let a), .list(let b)):
            return .list(try concatenated(a, b))
        case (.add, .list(let a), .tuple(let b)) where augmented:
            // Python's list += extends by any sequence; plain + does not.
            return .list(try concatenated(a, b))
        case (.add, .tuple(let a), .tuple(let b)):
            return .tuple(try concatenated(a, b))
        case (.subtract, .integer(let a), .integer(let b)):
            return try checked(a.subtractingReportingOverflow(b))
        case (.multiply, .integer(let a), .integer(let b)):
            return try checked(a.multipliedReportingOverflow(by: b))
        case (.multiply, .string(let text), .integer(let count)),
            (.multiply, .integer(let count), .string(let text)):
            return .string(String(decoding: try repeated(Array(text.utf8), count), as: UTF8.self))
        case (.multiply, .list(let items), .integer(let count)),
            (.multiply, .integer(let count), .list(let items)):
            return .list(try repeated(items, count))
        case (.multiply, .tuple(let items), .integer(let count)),
            (.multiply, .integer(let count), .tuple(let items)):
            return .tuple(try repeated(items, count))
        case (.divide, .integer(let a), .integer(let b)),
            (.floorDivide, .integer(let a), .integer(let b)):
            // Python 2 (which ran xm) divides integers with `/` by flooring.
            guard b != 0 else { throw fail("integer division by zero") }
            let (quotient, overflow) = a.dividedReportingOverflow(by: b)
            if overflow { throw fail("integer overflow") }
            let remainder = a - quotient * b
            return .integer(remainder != 0 && (remainder < 0) != (b < 0) ? quotient - 1 : quotient)
        case (.modulo, .integer(let a), .integer(let b)):
            guard b != 0 else { throw fail("integer modulo by zero") }
            if b == -1 { return .integer(0) }
            let remainder = a % b
            return .integer(
                remainder != 0 && (remainder < 0) != (b < 0) ? remainder + b : remainder)
        case (.modulo, .string(let format), _):
            let text: String
            do {
                text = try PercentFormat.format(format, right)
            } catch {
                throw fail(error.message)
            }
            guard text.utf8.count <= Self.sizeLimit else {
                throw fail("formatted string is too large")
            }
            return .string(text)
        default:
            throw unsupported()
        }
    }
}

extension DomainConfigError {
    /// The message without its location, for errors that wrap another.
    var reason: String {
        switch self {
        case .syntax(_, let message), .evaluation(_, _, let message): return message
        default: return description
        }
    }
}
