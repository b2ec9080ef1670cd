import Testing

@testable import Toolstack

@Suite struct StateFlagsTests {
    @Test func placeholder() {
        #expect(DomainStateFlags(running: true).description == "r-----")
    }
}
