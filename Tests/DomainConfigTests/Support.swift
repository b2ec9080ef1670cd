@testable import DomainConfig

/// Always returns the same word: every generated MAC is 00:16:3e:7f:ff:ff
/// with `UInt64.max` (the top random byte is limited to 0...0x7f).
struct ConstantGenerator: RandomNumberGenerator {
    var value: UInt64 = .max
    mutating func next() -> UInt64 { value }
}

/// SplitMix64: deterministic, different MACs for different vifs.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Evaluates `text` as the config file `file` with `xm create` arguments.
func evaluate(
    _ text: String, file: String = "/etc/xen/test", arguments: [String] = [],
    workingDirectory: String = "/root"
) throws -> DomainSpec {
    var generator = ConstantGenerator()
    return try DomainConfigFile.evaluate(
        text, file: file, arguments: try XmCreateArguments(arguments),
        workingDirectory: workingDirectory, using: &generator)
}

/// The error evaluating `text` throws, or nil if it succeeds.
func failure(
    _ text: String, file: String = "/etc/xen/test", arguments: [String] = []
) -> DomainConfigError? {
    do {
        _ = try evaluate(text, file: file, arguments: arguments)
        return nil
    } catch let error as DomainConfigError {
        return error
    } catch {
        return nil
    }
}

/// A minimal valid config to which tests append what they exercise.
let kernelLine = "kernel = '/boot/vmlinuz'\n"

/// The value of `name` after running `text` (for language tests).
func value(of name: String, in text: String, arguments: [String] = []) throws -> ConfigValue? {
    let statements = try Parser.parse(Array(text.utf8), file: "t")
    var evaluator = Evaluator(predefined: try XmCreateArguments(arguments).variableValues)
    try evaluator.run(statements)
    return evaluator.variables[name]?.value
}

/// Shorthand for list values in expectations.
func list(_ values: ConfigValue...) -> ConfigValue {
    .list(values.map { ConfigItem(value: $0, location: nil) })
}

func tuple(_ values: ConfigValue...) -> ConfigValue {
    .tuple(values.map { ConfigItem(value: $0, location: nil) })
}

/// A MAC from a literal that is known to be valid.
func mac(_ text: String) -> MACAddress {
    MACAddress(parsing: text) ?? MACAddress.unset
}

/// The MAC `ConstantGenerator` yields for every generated vif.
let generatedMAC = mac("00:16:3e:7f:ff:ff")
