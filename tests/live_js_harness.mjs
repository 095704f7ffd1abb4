// Runs static/mc/live.js in Node (>= 20, with --experimental-websocket) against a real server.
// argv: path of live.js, host:port, API token. Prints one JSON line per event frame, resync and state
// change; reads nothing. The page objects live.js touches are minimal stand-ins; the
// WebSocket is real.
import { readFileSync } from "node:fs";

const [source, host, token] = process.argv.slice(2);
const out = (line) => process.stdout.write(JSON.stringify(line) + "\n");

globalThis.window = globalThis;
globalThis.location = { protocol: "http:", host };
globalThis.document = { getElementById: () => null }; // no status badge on this "page"
// A browser signs in with its session cookie; this "page" with ?token= on the same socket.
const NodeWebSocket = globalThis.WebSocket;
globalThis.WebSocket = class extends NodeWebSocket {
  constructor(url, protocols) {
    super(`${url}?token=${encodeURIComponent(token)}`, protocols);
  }
};
new Function(readFileSync(source, "utf8"))();

const live = window.MC.live;
let last = null;
live.onState((state) => {
  // live.js reports "connecting" first; the test follows live/down transitions.
  if (state !== last && state !== "connecting") out({ state });
  last = state;
});
live.subscribe("logs:*", { history: 0 }, (events, frame) => {
  if (frame.resync) out({ resync: frame.payload.reason });
  else out({ seq: frame.seq ?? null, epoch: frame.epoch ?? null, ids: events.map((e) => e.id) });
});
setInterval(() => {}, 1000);
