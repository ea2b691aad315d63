// Node clients for the corpus, one request a second, at most COUNT requests. Modes:
//   halfopen    raw net sockets with allowHalfOpen (as hand-rolled protocol clients use them):
//               each sends one request, reads everything, and never calls end()/destroy():
//               Node reads the end of stream itself (Recv-Q 0) and the socket stays open
//   unconsumed  the http module with a keep-alive Agent, the response never read (measured:
//               Node's http client destroys a socket on the server's FIN, so this leaves no
//               CLOSE_WAIT: a healthy case)
//   correct     the same Agent, every response read to its end (res.resume())
// Prints {"ready": true, "pid": N} before the first request.
const http = require("http");
const net = require("net");
const [mode, url, countText] = process.argv.slice(2);
const count = parseInt(countText || "300", 10);
const target = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: 100000 });
const kept = [];
console.log(JSON.stringify({ ready: true, pid: process.pid }));
let sent = 0;
const deadline = Date.now() + (count + 30) * 1000;
const timer = setInterval(() => {
  if (sent >= count || Date.now() > deadline) { clearInterval(timer); return; }
  sent++;
  if (mode === "halfopen") {
    const socket = net.connect({ host: target.hostname, port: Number(target.port), allowHalfOpen: true });
    socket.on("connect", () => socket.write("GET / HTTP/1.1\r\nHost: " + target.host + "\r\n\r\n"));
    socket.on("data", () => {});
    socket.on("error", () => {});
    kept.push(socket);
    return;
  }
  http.get(url, { agent }, (res) => {
    if (mode === "unconsumed") kept.push(res);
    else if (mode === "correct") res.resume();
    else { console.error("unknown mode " + mode); process.exit(2); }
  }).on("error", () => {});
}, 1000);
