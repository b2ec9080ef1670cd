// The two compiler-runtime routines an i686 build needs for 64-bit
// division (the toolchain ships compiler-rt builtins for x86_64 only).
// Plain shift-and-subtract: the stub divides a few hundred times while
// printing, never in a hot path. Embedded-only.

@_cdecl("__udivdi3")
func udivdi3(_ dividend: UInt64, _ divisor: UInt64) -> UInt64 {
    longDivision(dividend, divisor).quotient
}

@_cdecl("__umoddi3")
func umoddi3(_ dividend: UInt64, _ divisor: UInt64) -> UInt64 {
    longDivision(dividend, divisor).remainder
}

/// Binary long division using only shifts, compares and subtractions, so
/// that it cannot compile back into a call to itself. Division by zero
/// yields zero rather than a trap: the stub has no exception handler.
@inline(__always)
func longDivision(_ dividend: UInt64, _ divisor: UInt64) -> (quotient: UInt64, remainder: UInt64) {
    guard divisor != 0 else { return (0, 0) }
    var quotient: UInt64 = 0
    var remainder: UInt64 = 0
    var bit: UInt64 = 64
    while bit > 0 {
        bit &-= 1
        remainder = (remainder &<< 1) | ((dividend &>> bit) & 1)
        if remainder >= divisor {
            remainder &-= divisor
            quotient |= 1 &<< bit
        }
    }
    return (quotient, remainder)
}
