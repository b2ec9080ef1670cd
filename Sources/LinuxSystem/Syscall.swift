import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// The one place where a raw system call's `-1`/`errno` convention becomes a
/// `Result`; `EINTR` is retried here and nowhere else.
///
/// - Parameter body: the call; it returns `-1` and sets `errno` on failure.
@inlinable
public func retryingSyscall<T: FixedWidthInteger>(_ body: () -> T) -> Result<T, Errno> {
    while true {
        let value = body()
        if value != -1 { return .success(value) }
        let error = Errno(rawValue: errno)
        if error != .interrupted { return .failure(error) }
    }
}

/// Like ``retryingSyscall(_:)`` but never retries: for calls such as
/// `close(2)` where a retry after `EINTR` is wrong.
@inlinable
public func singleSyscall<T: FixedWidthInteger>(_ body: () -> T) -> Result<T, Errno> {
    let value = body()
    if value != -1 { return .success(value) }
    return .failure(Errno(rawValue: errno))
}
