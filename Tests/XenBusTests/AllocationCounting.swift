import CAllocationCounter

/// Heap allocations the calling thread makes while `body` runs (malloc and
/// friends, counted by the CAllocationCounter interposer). Freed blocks
/// count too, which in-use byte totals (mallinfo2) would miss.
func allocations<E: Error>(_ body: () throws(E) -> Void) throws(E) -> UInt64 {
    let before = allocation_counter_thread_total()
    try body()
    return allocation_counter_thread_total() &- before
}
