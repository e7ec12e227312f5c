// Drives the real npm Yjs providers for partydeco's pytest suite (tests/test_yjs_js.py):
// `y-partykit/provider` (YPartyKitProvider) and `y-websocket` (WebsocketProvider), each
// with its own `yjs` Doc, in one Node process.
//
// Protocol: one JSON command per stdin line, one JSON reply or event per stdout line, as
// tests/js/driver.mjs. The Python side owns timing and assertions.
//
// Commands (each may carry "id"; the reply is {"reply": id, ...}):
//   {"op":"open","name":N,"kind":"partykit"|"websocket","host":"127.0.0.1:P","party":"docs",
//    "room":R,"token":T}
//   {"op":"type","name":N,"index":I,"text":S}      insert into the Y.Text "text"
//   {"op":"awareness","name":N,"state":{...}}       awareness.setLocalState
//   {"op":"state","name":N}  -> {text, synced, connected, clientID, awareness: {id: state}}
//   {"op":"disconnect","name":N} | {"op":"connect","name":N}
//   {"op":"raw","name":N,"bytes":[..]}             send a frame on the provider's socket
//   {"op":"exit"}
// Events: {"event":"text","name":N,"text":S} after every change of the document,
//   {"event":"synced","name":N}, {"event":"status","name":N,"status":S},
//   {"event":"close","name":N,"code":C,"reason":R}, {"event":"denied","name":N,"reason":S}
//   (y-protocols' permission-denied, which the providers only console.warn),
//   {"event":"awareness","name":N,"states":{id: state}}.
import readline from "node:readline";
import YPartyKitProvider from "y-partykit/provider";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import WS from "ws";

const clients = new Map();
const write = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

// The providers report a permission-denied auth message with console.warn only.
const warn = console.warn;
console.warn = (...args) => {
  const text = args.map(String).join(" ");
  const match = /^Permission denied to access (\S+)\.\n([\s\S]*)$/.exec(text);
  if (match) {
    for (const [name, c] of clients) {
      if (match[1] === c.provider.url) write({ event: "denied", name, reason: match[2] });
    }
    return;
  }
  warn(...args);
};

function states(provider) {
  return Object.fromEntries([...provider.awareness.getStates()].map(([id, s]) => [id, s]));
}

function open(cmd) {
  const doc = new Y.Doc();
  const text = doc.getText("text");
  let provider;
  if (cmd.kind === "websocket") {
    provider = new WebsocketProvider(`ws://${cmd.host}/parties/${cmd.party}`, cmd.room, doc, {
      WebSocketPolyfill: WS,
      params: { token: cmd.token },
      disableBc: true,
    });
  } else {
    provider = new YPartyKitProvider(cmd.host, cmd.room, doc, {
      party: cmd.party,
      params: { token: cmd.token },
      WebSocketPolyfill: WS,
      disableBc: true,
    });
  }
  const name = cmd.name;
  clients.set(name, { doc, text, provider });
  doc.on("update", () => write({ event: "text", name, text: text.toString() }));
  provider.on("synced", (synced) => synced && write({ event: "synced", name }));
  provider.on("status", ({ status }) => write({ event: "status", name, status }));
  provider.on("connection-close", (e) => e && write({ event: "close", name, code: e.code, reason: e.reason }));
  provider.awareness.on("change", () => write({ event: "awareness", name, states: states(provider) }));
}

async function handle(cmd) {
  const c = cmd.name === undefined ? undefined : clients.get(cmd.name);
  switch (cmd.op) {
    case "open":
      open(cmd);
      return {};
    case "type":
      c.text.insert(cmd.index ?? c.text.length, cmd.text);
      return {};
    case "awareness":
      c.provider.awareness.setLocalState(cmd.state);
      return {};
    case "state":
      return {
        text: c.text.toString(),
        synced: c.provider.synced,
        connected: c.provider.wsconnected,
        clientID: c.doc.clientID,
        awareness: states(c.provider),
      };
    case "disconnect":
      c.provider.disconnect();
      return {};
    case "connect":
      c.provider.connect();
      return {};
    case "raw":
      c.provider.ws.send(new Uint8Array(cmd.bytes));
      return {};
    case "exit":
      for (const { provider } of clients.values()) provider.destroy();
      setImmediate(() => process.exit(0));
      return {};
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
    write({ reply: cmd.id, ok: true, ...(await handle(cmd)) });
  } catch (err) {
    write({ reply: cmd?.id, ok: false, error: String(err?.stack ?? err) });
  }
});
rl.on("close", () => process.exit(0));
write({ event: "ready", node: process.version });
