// Runs static/live.js in Node (>= 20, with --experimental-websocket) against a real server.
// argv: path of live.js, host:port. Prints one JSON line per event frame and state change;
// reads nothing. The page objects live.js touches are minimal stand-ins; the WebSocket is real.
import { readFileSync } from "node:fs";

const [source, host] = process.argv.slice(2);
const out = (line) => process.stdout.write(JSON.stringify(line) + "\n");

globalThis.window = globalThis;
globalThis.location = { protocol: "http:", host };
globalThis.document = { getElementById: () => null }; // no overview on this "page"
new Function(readFileSync(source, "utf8"))();

const live = window.MissionControlLive.connect((state) => out({ state }));
live.subscribe("logs:*", { history: 0 }, {
  onEvents: (events, frame) => out({ seq: frame.seq ?? null, epoch: frame.epoch ?? null, ids: events.map((e) => e.id) }),
  onResync: (payload) => out({ resync: payload.reason }),
});
setInterval(() => {}, 1000);
