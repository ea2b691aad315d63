/// HTTPExchange is the whole HTTP/1.x surface of the metrics endpoint, as pure code: it reads
/// a request head from untrusted bytes (bounded in size and header count) and decides the
/// response. The Linux layer only moves bytes; every decision is here and fuzzed.
///
/// Only `GET`/`HEAD` of `/metrics` (the page), `/healthz` (200 while ticks are fresh, else 503)
/// and `/` (a link to the page) are answered; every response closes the connection, so no
/// request body or pipelining is ever read.
public enum HTTPExchange {
    /// The largest request head read; beyond it the answer is 431 and the connection closes.
    public static let maxHeadBytes = 8192
    /// The most header lines accepted.
    public static let maxHeaderLines = 64

    /// What the endpoint did, for the daemon's own metrics.
    public struct Counters: Sendable, Equatable {
        /// Requests answered (any status from a well-formed request).
        public var responses = 0
        /// Malformed or oversized requests answered with 4xx/5xx.
        public var rejected = 0
        /// Connections closed for sending no whole request, or not reading the answer, in time.
        public var timedOut = 0
        /// Connections dropped to make room (more than `maxClients` at once).
        public var evicted = 0
        public init() {}
    }

    public enum Parse: Equatable, Sendable {
        /// No blank line yet and still under the limits: read more.
        case incomplete
        case request(method: String, path: String)
        /// Answer with this status and close.
        case reject(status: Int)
    }

    /// Parses the bytes received so far (`buffer` holds at most `maxHeadBytes + 1` of them).
    public static func parse(_ buffer: [UInt8]) -> Parse {
        guard let end = headEnd(buffer) else {
            if buffer.count > maxHeadBytes { return .reject(status: 431) }
            // A request line alone longer than the limit, or not starting like one, fails early.
            if let first = buffer.first, !(0x41...0x5a).contains(first) { return .reject(status: 400) }
            return .incomplete
        }
        if end > maxHeadBytes { return .reject(status: 431) }
        var lines = [ArraySlice<UInt8>]()
        var start = 0
        for i in 0..<end where buffer[i] == 0x0a {
            var line = buffer[start..<i]
            if line.last == 0x0d { line = line.dropLast() }
            lines.append(line)
            start = i + 1
        }
        if lines.last?.isEmpty == true { lines.removeLast() }  // the blank line that ends the head
        guard let requestLine = lines.first else { return .reject(status: 400) }
        if lines.count - 1 > maxHeaderLines { return .reject(status: 431) }
        let parts = requestLine.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else { return .reject(status: 400) }
        guard parts[0].allSatisfy({ (0x41...0x5a).contains($0) }) else { return .reject(status: 400) }
        let version = parts[2]
        guard version.count == 8, version.starts(with: Array("HTTP/1.".utf8)) else {
            return version.starts(with: Array("HTTP/".utf8)) ? .reject(status: 505) : .reject(status: 400)
        }
        guard version.last == 0x30 || version.last == 0x31 else { return .reject(status: 505) }
        for header in lines.dropFirst() {
            // field-name ":" value; a name is a token; no obsolete line folding, no controls.
            guard let colon = header.firstIndex(of: 0x3a), colon > header.startIndex,
                header[header.startIndex..<colon].allSatisfy(isTokenByte),
                header[(colon + 1)...].allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7f) })
            else { return .reject(status: 400) }
        }
        let target = parts[1]
        guard target.first == 0x2f, target.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else { return .reject(status: 400) }
        let pathEnd = target.firstIndex(of: 0x3f) ?? target.endIndex
        return .request(
            method: String(decoding: parts[0], as: UTF8.self),
            path: String(decoding: target[target.startIndex..<pathEnd], as: UTF8.self))
    }

    /// The index just past the blank line that ends the head (`\r\n\r\n` or `\n\n`), if any.
    static func headEnd(_ buffer: [UInt8]) -> Int? {
        var i = 0
        while i < buffer.count {
            if buffer[i] == 0x0a {
                if i + 1 < buffer.count, buffer[i + 1] == 0x0a { return i + 2 }
                if i + 2 < buffer.count, buffer[i + 1] == 0x0d, buffer[i + 2] == 0x0a { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5a, 0x61...0x7a: return true
        default: return Array("!#$%&'*+-.^_`|~".utf8).contains(b)
        }
    }

    /// The content type of the Prometheus text exposition format.
    public static let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

    /// What to send for a parse result; `page` renders the metrics only when asked for.
    /// - Parameter health: why `/healthz` fails (503 with the reason), nil for 200 `ok`.
    public static func response(to parse: Parse, page: () -> [UInt8], health: () -> String? = { nil }) -> [UInt8] {
        switch parse {
        case .incomplete:
            return build(
                status: 408, type: "text/plain; charset=utf-8", body: Array("request timed out\n".utf8), head: false)
        case let .reject(status):
            return build(
                status: status, type: "text/plain; charset=utf-8", body: Array("\(reason(status).lowercased())\n".utf8),
                head: false)
        case let .request(method, path):
            guard method == "GET" || method == "HEAD" else {
                return build(
                    status: 405, type: "text/plain; charset=utf-8", body: Array("only GET and HEAD\n".utf8),
                    head: false, extra: "Allow: GET, HEAD\r\n")
            }
            switch path {
            case "/metrics":
                return build(status: 200, type: metricsContentType, body: page(), head: method == "HEAD")
            case "/healthz":
                let problem = health()
                return build(
                    status: problem == nil ? 200 : 503, type: "text/plain; charset=utf-8",
                    body: Array((problem.map { "stale: " + $0 } ?? "ok").utf8) + [0x0a], head: method == "HEAD")
            case "/":
                let html =
                    "<html><head><title>closewaitd</title></head><body><h1>closewaitd</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n"
                return build(
                    status: 200, type: "text/html; charset=utf-8", body: Array(html.utf8), head: method == "HEAD")
            default:
                return build(
                    status: 404, type: "text/plain; charset=utf-8", body: Array("not found; try /metrics\n".utf8),
                    head: false)
            }
        }
    }

    static func build(status: Int, type: String, body: [UInt8], head: Bool, extra: String = "") -> [UInt8] {
        let header =
            "HTTP/1.1 \(status) \(reason(status))\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\n\(extra)Connection: close\r\n\r\n"
        return Array(header.utf8) + (head ? [] : body)
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 431: return "Request Header Fields Too Large"
        case 503: return "Service Unavailable"
        case 505: return "HTTP Version Not Supported"
        default: return "Error"
        }
    }
}
