/// What a process shows of its HTTP client library, read by the Linux layer in bounded amounts
/// when it is looked at: the jar files it holds open (a JVM), its threads' names, the Go
/// toolchain in its executable's build info, its executable's name. All untrusted bytes.
public struct RuntimeClues: Sendable, Equatable {
    /// Base names of the `.jar` files among its open fds (at most a few dozen).
    public var jars: [ByteString] = []
    /// Its threads' names (comm), at most a few hundred.
    public var threads: [ByteString] = []
    /// The Go version its executable was built with (`go1.21.3`), from `.go.buildinfo`.
    public var goVersion: String?
    /// The executable's base name.
    public var executable: ByteString?

    /// The runtimes whose clues differ: what to read for each is the reader's, what it
    /// means the hint's.
    public enum Runtime: Sendable, Equatable {
        case jvm, python, node, other

        /// From the executable's base name (`java`, `python3.11`, `node`).
        public init(executable: ByteString?) {
            let name = executable?.lossy ?? ""
            if name == "java" {
                self = .jvm
            } else if name.hasPrefix("python") {
                self = .python
            } else if name == "node" || name == "nodejs" {
                self = .node
            } else {
                self = .other
            }
        }
    }

    public var runtime: Runtime { Runtime(executable: executable) }

    public init(
        jars: [ByteString] = [], threads: [ByteString] = [], goVersion: String? = nil, executable: ByteString? = nil
    ) {
        self.jars = jars
        self.threads = threads
        self.goVersion = goVersion
        self.executable = executable
    }
}

/// LibraryHint names the client library a process shows and that library's fix for the
/// diagnosed class: a hint, labelled as such (a process may hold a library it does not use
/// for this peer). Pure: clues in, words out.
public struct LibraryHint: Sendable, Equatable {
    /// The library, as people call it ("Apache HttpClient 4.x").
    public var library: String
    /// What showed it ("httpclient-4.5.14.jar open").
    public var seen: String
    /// The call that fixes the class in that library.
    public var fix: String

    public init(library: String, seen: String, fix: String) {
        self.library = library
        self.seen = seen
        self.fix = fix
    }

    /// One line for alerts and `explain`.
    public var sentence: String { "Hint: \(library) (\(seen)): \(fix)" }

    /// The first library the clues show, with its fix for `kind`; nil when none shows.
    public static func from(_ clues: RuntimeClues, kind: Diagnosis.Kind) -> LibraryHint? {
        let jars = clues.jars.map(\.lossy)
        // `httpclient-4.5.14.jar` or, as Debian installs them, `httpclient.jar`.
        func jar(_ name: String) -> String? {
            jars.first { $0.hasSuffix(".jar") && ($0 == name + ".jar" || $0.hasPrefix(name + "-")) }
                .map { Escape.line($0, limit: 80) }
        }
        let unread = kind == .unreadResponses
        let idle = kind == .idlePool
        // Jar names (first match wins), the library, its fix for an idle pool, its fix otherwise.
        let jvm: [(names: [String], library: String, idle: String?, fix: String)] = [
            (
                ["httpclient5", "httpcore5"], "Apache HttpClient 5.x",
                "set an idle eviction: HttpClients.custom().evictIdleConnections(TimeValue.ofSeconds(30)), or validate after inactivity",
                "close every ClassicHttpResponse (try-with-resources) and consume its entity (EntityUtils.consume); reuse one CloseableHttpClient"
            ),
            (
                ["commons-httpclient"], "commons-httpclient 3.x", nil,
                "call method.releaseConnection() in a finally block and connectionManager.closeIdleConnections(timeout) periodically, or send `Connection: close`; releaseConnection() alone leaves the server-closed connection in CLOSE_WAIT"
            ),
            (
                ["httpclient"], "Apache HttpClient 4.x",
                "evict idle connections: HttpClients.custom().evictIdleConnections(30, TimeUnit.SECONDS) (or connManager.closeIdleConnections), and setValidateAfterInactivity",
                "close every CloseableHttpResponse (try-with-resources) after EntityUtils.consume(response.getEntity()); releaseConnection() alone is not enough, and one client should serve the process"
            ),
            (
                ["okhttp"], "OkHttp",
                "give the ConnectionPool a keep-alive shorter than the server's (new ConnectionPool(5, 30, SECONDS))",
                "close every Response or its body (response.close(), try-with-resources); share one OkHttpClient"
            ),
            (
                ["jetty-client"], "Jetty HttpClient", nil,
                "consume or abort every response content, and set HttpClient.setIdleTimeout below the server's keep-alive"
            ),
            (
                ["netty-all", "netty-codec-http", "netty"], "Netty", nil,
                "close the Channel on channelInactive/userEventTriggered (an IdleStateHandler), and release every ByteBuf of a response"
            ),
        ]
        for entry in jvm {
            guard let name = entry.names.lazy.compactMap(jar).first else { continue }
            return LibraryHint(
                library: entry.library, seen: "\(name) open", fix: idle ? entry.idle ?? entry.fix : entry.fix)
        }
        let threads = clues.threads.map(\.lossy)
        if let thread = threads.first(where: { $0.hasPrefix("HttpClient-") }) {
            return LibraryHint(
                library: "the JDK's java.net.http.HttpClient", seen: "thread \(Escape.line(thread, limit: 40))",
                fix:
                    "share one HttpClient for the process instead of one per request, and read or discard every body (BodyHandlers.discarding())"
            )
        }
        if let version = clues.goVersion {
            return LibraryHint(
                library: "Go net/http (\(Escape.line(version, limit: 20)))", seen: "Go build info in the executable",
                fix: unread || kind == .abandonedConnections
                    ? "always `defer resp.Body.Close()` after checking err, and drain it (io.Copy(io.Discard, resp.Body)) so the connection returns to the pool"
                    : "set Transport.IdleConnTimeout below the server's keep-alive timeout, or call CloseIdleConnections()"
            )
        }
        let executable = clues.executable.map(\.lossy) ?? ""
        if clues.runtime == .python {
            return LibraryHint(
                library: "Python (requests/urllib3, if it uses them)",
                seen: "executable \(Escape.line(executable, limit: 40))",
                fix:
                    "use `with requests.Session() as s:` (or session.close()) and close streamed responses (`with s.get(url, stream=True) as r:`); with urllib3, response.release_conn() or read it to the end"
            )
        }
        if clues.runtime == .node {
            return LibraryHint(
                library: "Node http", seen: "executable \(Escape.line(executable, limit: 40))",
                fix:
                    "consume every response (res.resume() or read it) so the socket returns to the Agent, and agent.destroy() when done with it; a net.Socket with allowHalfOpen must call socket.end() on 'end'"
            )
        }
        return nil
    }
}
