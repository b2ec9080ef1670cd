#if canImport(Glibc)
    import Glibc
#endif

/// Ends the process with a status (a wrapper so callers need no libc import).
func exitProcess(_ status: Int32) -> Never {
    exit(status)
}
