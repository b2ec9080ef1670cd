import XenBus
import XenStore

/// The real xenstore behind the backend machinery: `XenStoreClient` seen as
/// the `XenBusStore` that `BackendBus` and `BackendDevice` take.
public struct XenStoreBusStore: XenBusStore {
    public let client: XenStoreClient

    public init(client: XenStoreClient) {
        self.client = client
    }

    public func read(_ path: String) async throws -> String? {
        try await client.readIfPresent(path)
    }

    public func write(_ path: String, _ value: String) async throws {
        try await client.write(path, value)
    }

    public func directory(_ path: String) async throws -> [String] {
        do {
            return try await client.directory(path)
        } catch XenStoreError.noEntry {
            return []
        }
    }

    public func remove(_ path: String) async throws {
        try await client.remove(path)
    }

    public func watch(_ path: String) async throws -> AsyncThrowingStream<String, any Error> {
        let watch = try await client.watch(path)
        return AsyncThrowingStream { continuation in
            let forward = Task {
                do {
                    for try await event in watch { continuation.yield(event.path) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            // The consumer stopped iterating or was cancelled: unwatch.
            continuation.onTermination = { _ in
                forward.cancel()
                Task { await watch.cancel() }
            }
        }
    }
}
