import Testing

@testable import Provisioning

@Suite("fetch URL and HTTP response parser")
struct HTTPTests {
    @Test func parsesURLs() throws {
        let plain = try FetchURL("http://10.0.2.100/bundles/host7.tar")
        #expect(plain.scheme == .http)
        #expect(plain.host == "10.0.2.100")
        #expect(plain.port == 80)
        #expect(plain.target == "/bundles/host7.tar")
        let tls = try FetchURL("HTTPS://[2001:db8::1]:8443?x=1")
        #expect(tls.scheme == .https)
        #expect(tls.host == "2001:db8::1")
        #expect(tls.port == 8443)
        #expect(tls.target == "/?x=1")
        #expect(tls.description == "https://[2001:db8::1]:8443/?x=1")
        #expect(
            String(decoding: try FetchURL("http://boot:8080").request, as: UTF8.self)
                == "GET / HTTP/1.1\r\nHost: boot:8080\r\nUser-Agent: proxenos\r\nAccept: */*\r\n"
                + "Connection: close\r\n\r\n")
    }

    @Test(arguments: [
        "ftp://x/", "http//x/", "http://", "http://:80/", "http://x:0/", "http://x:65536/",
        "http://user@x/", "http://x/a b", "http://x/#frag", "http://[::1/", "http://x:8a/",
    ])
    func refusesURLs(_ text: String) {
        #expect(throws: FetchURL.Problem.self) { try FetchURL(text) }
    }

    @Test func redirectsResolve() throws {
        let base = try FetchURL("https://boot:8443/a")
        #expect(try base.resolving("/b").description == "https://boot:8443/b")
        #expect(try base.resolving("http://other/c").description == "http://other/c")
    }

    static let chunked = Array(
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n"
            + "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n").utf8)

    @Test func parsesWholeAndByteByByte() throws {
        let whole = Array(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: x\r\n\r\nhello".utf8)
        for response in [whole, Self.chunked] {
            var parser = HTTPResponseParser(bodyLimit: 100)
            let all = try parser.feed(response)
            var stepwise = HTTPResponseParser(bodyLimit: 100)
            var last: HTTPResponseParser.Response?
            for byte in response {
                #expect(last == nil)
                last = try stepwise.feed([byte])
            }
            #expect(all != nil)
            #expect(all == last)
        }
        var parser = HTTPResponseParser(bodyLimit: 100)
        let response = try #require(try parser.feed(Self.chunked))
        #expect(response.status == 200)
        #expect(response.body == Array("hello world".utf8))
        #expect(response.header("X-A") == "b")
    }

    @Test func bodyUntilCloseAndInterimResponses() throws {
        var parser = HTTPResponseParser(bodyLimit: 100)
        #expect(
            try parser.feed(
                Array("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 404 Not Found\r\n\r\ngone".utf8))
                == nil)
        let response = try parser.finish()
        #expect(response.status == 404)
        #expect(response.reason == "Not Found")
        #expect(response.body == Array("gone".utf8))
    }

    @Test func truncatedBodyIsAnError() throws {
        var parser = HTTPResponseParser(bodyLimit: 100)
        #expect(
            try parser.feed(Array("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf".utf8)) == nil)
        #expect(throws: HTTPResponseParser.Error.truncated) { try parser.finish() }
    }

    @Test func limitsHold() {
        var parser = HTTPResponseParser(bodyLimit: 4)
        #expect(throws: HTTPResponseParser.Error.bodyTooLarge(limit: 4)) {
            try parser.feed(Array("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".utf8))
        }
        var chunked = HTTPResponseParser(bodyLimit: 4)
        #expect(throws: HTTPResponseParser.Error.bodyTooLarge(limit: 4)) {
            try chunked.feed(Self.chunked)
        }
        var endless = HTTPResponseParser(bodyLimit: 4)
        #expect(throws: HTTPResponseParser.Error.bodyTooLarge(limit: 4)) {
            try endless.feed(Array("HTTP/1.1 200 OK\r\n\r\nhello".utf8))
        }
        var head = HTTPResponseParser(bodyLimit: 4)
        #expect(throws: HTTPResponseParser.Error.headTooLong) {
            try head.feed(
                Array("HTTP/1.1 200 OK\r\nX: ".utf8) + [UInt8](repeating: 0x61, count: 20000))
        }
    }

    @Test(arguments: [
        "HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
    ])
    func malformedResponsesAreErrors(_ text: String) {
        var parser = HTTPResponseParser(bodyLimit: 100)
        #expect(throws: HTTPResponseParser.Error.self) { try parser.feed(Array(text.utf8)) }
    }
}
