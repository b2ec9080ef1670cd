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
/// that aliasing).
struct Evaluator {
    /// Longest string or list an expression may build, so a runaway
    /// `"x" * 10**9` fails with a message instead of exhausting memory.
    static let sizeLimit = 1 << 20

    private(set) var variables: [String: Variable] = [:]
    /// Names in the order they were first set, for stable warnings.
    private(set) var order: [String] = []

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
        for statement in statements {
            try execute(statement)
        }
    }

    private mutating func execute(_ statement: Statement) throws(DomainConfigError) {
        let key = statement.targets.first?.name
        var value = try evaluate(statement.value, key: key)
        if let op = statement.augmented, let target = statement.targets.first {
            guard let current = variables[target.name] else {
                throw .evaluation(
                    target.location, key: target.name,
                    "'\(target.name) \(op.rawValue)= ...' but '\(target.name)' was not set before")
            }
            value = try apply(
                op, current.value, value, at: target.location, key: target.name, augmented: true)
        }
        for target in statement.targets {
            set(target.name, Variable(value: value, origin: .file(target.location)))
        }
    }

    func evaluate(_ expression: Expression, key: String?) throws(DomainConfigError) -> ConfigValue {
        switch expression {
        case .integer(let value, _):
            return .integer(value)
        case .string(let text, _):
            return .string(text)
        case .none:
            return .none
        case .name(let name, let location):
            guard let variable = variables[name] else {
                if name == "True" || name == "False" {
                    throw .evaluation(location, key: key, "booleans are not supported; use 1 or 0")
                }
                throw .evaluation(location, key: key, "name '\(name)' is not defined")
            }
            return variable.value
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
            return try call(name, arguments, at: location, key: key)
        }
    }

    private func items(_ elements: [Expression], key: String?) throws(DomainConfigError)
        -> [ConfigItem]
    {
        var result: [ConfigItem] = []
        for element in elements {
            result.append(
                ConfigItem(value: try evaluate(element, key: key), location: element.location))
        }
        return result
    }

    private func call(
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
