// Node http clients for the corpus, one request a second, at most COUNT requests. Modes:
//   unconsumed  a keep-alive Agent, the response never read (res never resumed): Node reads the
//               end of stream itself, the socket is never destroyed (Recv-Q 0)
//   correct     the same Agent, every response read to its end (res.resume())
// Prints {"ready": true, "pid": N} before the first request.
const http = require("http");
const [mode, url, countText] = process.argv.slice(2);
const count = parseInt(countText || "300", 10);
const agent = new http.Agent({ keepAlive: true, maxSockets: 100000 });
const kept = [];
console.log(JSON.stringify({ ready: true, pid: process.pid }));
let sent = 0;
const deadline = Date.now() + (count + 30) * 1000;
const timer = setInterval(() => {
  if (sent >= count || Date.now() > deadline) { clearInterval(timer); return; }
  sent++;
  http.get(url, { agent }, (res) => {
    if (mode === "unconsumed") kept.push(res);
    else if (mode === "correct") res.resume();
    else { console.error("unknown mode " + mode); process.exit(2); }
  }).on("error", () => {});
}, 1000);
