import LinuxSystem

/// Runs `body` on a new detached, named pthread (``LinuxSystem/Threads/spawn(name:_:)``).
/// Blocking readers (the client's reply reader, the in-memory server's
/// connections) get their own thread so they never occupy Swift's
/// cooperative pool.
///
/// - Throws: ``XenStoreError/system(operation:_:)`` if no thread could be
///   created.
package func spawnThread(name: String, _ body: @escaping @Sendable () -> Void)
    throws(XenStoreError)
{
    try SystemCallError.mapping(XenStoreError.init) { () throws(SystemCallError) in
        try Threads.spawn(name: name, body)
    }
}
