import CloseWaitCore
import Testing

@Suite struct HTTPExchangeTests {
    func parse(_ text: String) -> HTTPExchange.Parse { HTTPExchange.parse(Array(text.utf8)) }

    @Test func acceptsWhatPrometheusAndCurlSend() {
        #expect(
            parse(
                "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9838\r\nUser-Agent: Prometheus/2.42.0\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\nAccept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n"
            )
                == .request(method: "GET", path: "/metrics"))
        #expect(parse("HEAD /metrics?x=1 HTTP/1.0\n\n") == .request(method: "HEAD", path: "/metrics"))
        #expect(parse("GET / HTTP/1.1\r\n\r\n") == .request(method: "GET", path: "/"))
    }

    @Test func waitsForTheBlankLine() {
        #expect(parse("") == .incomplete)
        #expect(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n") == .incomplete)
        #expect(parse("GET /metr") == .incomplete)
    }

    @Test func rejectsMalformedHeads() {
        for bad in [
            "get /metrics HTTP/1.1\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n",
            "GET /metrics\r\n\r\n", "GET /metrics HTTP/1.1 x\r\n\r\n", "GET /metrics HTTP/1.1\r\nNo colon\r\n\r\n",
            "GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n", "GET /metrics HTTP/1.1\r\nBad\u{1b}: x\r\n\r\n",
            "GET /met\u{7f}rics HTTP/1.1\r\n\r\n", "\r\n\r\n", "\u{16}\u{03}\u{01}",
        ] {
            #expect(parse(bad) == .reject(status: 400), "\(bad.debugDescription)")
        }
        #expect(parse("GET /metrics HTTP/2.0\r\n\r\n") == .reject(status: 505))
        #expect(parse("GET /metrics HTTP/1.9\r\n\r\n") == .reject(status: 505))
    }

    @Test func boundsTheHead() {
        let long =
            "GET /metrics HTTP/1.1\r\nX: " + String(repeating: "a", count: HTTPExchange.maxHeadBytes) + "\r\n\r\n"
        #expect(HTTPExchange.parse(Array(long.utf8.prefix(HTTPExchange.maxHeadBytes + 1))) == .reject(status: 431))
        let many =
            "GET /metrics HTTP/1.1\r\n" + String(repeating: "X: 1\r\n", count: HTTPExchange.maxHeaderLines + 1) + "\r\n"
        #expect(parse(many) == .reject(status: 431))
        let enough =
            "GET /metrics HTTP/1.1\r\n" + String(repeating: "X: 1\r\n", count: HTTPExchange.maxHeaderLines) + "\r\n"
        #expect(parse(enough) == .request(method: "GET", path: "/metrics"))
    }

    func response(_ parse: HTTPExchange.Parse) -> String {
        String(
            decoding: HTTPExchange.response(to: parse, page: { Array("closewaitd_close_wait_sockets 3\n".utf8) }),
            as: UTF8.self)
    }

    @Test func answersOnlyMetricsAndTheIndex() {
        let page = response(.request(method: "GET", path: "/metrics"))
        #expect(
            page.hasPrefix(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 32\r\n"))
        #expect(page.hasSuffix("\r\n\r\nclosewaitd_close_wait_sockets 3\n"))
        #expect(page.contains("Connection: close\r\n"))
        let head = response(.request(method: "HEAD", path: "/metrics"))
        #expect(head.contains("Content-Length: 32\r\n") && head.hasSuffix("\r\n\r\n"))
        #expect(response(.request(method: "GET", path: "/")).contains("<a href=\"/metrics\">"))
        #expect(response(.request(method: "GET", path: "/metrics/")).hasPrefix("HTTP/1.1 404 "))
        let post = response(.request(method: "POST", path: "/metrics"))
        #expect(post.hasPrefix("HTTP/1.1 405 ") && post.contains("Allow: GET, HEAD\r\n"))
        #expect(response(.reject(status: 431)).hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"))
        #expect(response(.incomplete).hasPrefix("HTTP/1.1 408 "))
    }

    /// /healthz: 200 while the daemon's ticks are fresh, 503 with the reason once they are not
    /// (a Kubernetes liveness probe).
    @Test func healthzSaysWhetherTicksAreFresh() {
        let fresh = String(
            decoding: HTTPExchange.response(to: .request(method: "GET", path: "/healthz"), page: { [] }), as: UTF8.self)
        #expect(fresh.hasPrefix("HTTP/1.1 200 OK\r\n") && fresh.hasSuffix("\r\n\r\nok\n"))
        let stale = String(
            decoding: HTTPExchange.response(
                to: .request(method: "GET", path: "/healthz"), page: { [] },
                health: { "the last successful sample finished 99 s ago" }),
            as: UTF8.self)
        #expect(stale.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"))
        #expect(stale.hasSuffix("\r\n\r\nstale: the last successful sample finished 99 s ago\n"))
    }

    @Test func rendersThePageOnlyWhenAskedFor() {
        var rendered = 0
        _ = HTTPExchange.response(
            to: .request(method: "GET", path: "/"),
            page: {
                rendered += 1; return []
            })
        _ = HTTPExchange.response(
            to: .reject(status: 400),
            page: {
                rendered += 1; return []
            })
        #expect(rendered == 0)
    }
}

@Suite struct ListenAddressTests {
    @Test func parsesNumericAddresses() {
        #expect(ListenAddress("127.0.0.1:9838")?.address == [127, 0, 0, 1])
        #expect(ListenAddress("127.0.0.1:9838")?.port == 9838)
        #expect(ListenAddress("0.0.0.0:1")?.description == "0.0.0.0:1")
        #expect(ListenAddress("[::1]:9838")?.address == Array(repeating: 0, count: 15) + [1])
        #expect(ListenAddress("[::1]:9838")?.description == "[::1]:9838")
        #expect(ListenAddress("[::]:80")?.description == "[::]:80")
        #expect(ListenAddress("[fd00:1::2]:65535")?.description == "[fd00:1::2]:65535")
        #expect(
            ListenAddress("[::ffff:10.0.0.1]:9")?.address == Array(repeating: 0, count: 10) + [0xff, 0xff, 10, 0, 0, 1])
        #expect(ListenAddress("[1:2:3:4:5:6:7:8]:9")?.address.count == 16)
    }

    @Test func refusesEverythingElse() {
        for bad in [
            "localhost:9838", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:+80",
            "127.0.0.01:80", "256.0.0.1:80", "1.2.3:80", "::1:9838", "[::1]", "[]:80", "[1::2::3]:80",
            "[1:2:3:4:5:6:7:8:9]:80", "[12345::]:80", "[g::]:80", "[::1]:99999", " 127.0.0.1:80", "127.0.0.1:80 ",
        ] {
            #expect(ListenAddress(bad) == nil, "\(bad)")
        }
    }
}
