// Drives the real `partysocket` npm client for partydeco's pytest suite.
//
// Protocol: one JSON object per line on stdin (commands), one per line on stdout
// (replies and events). The Python side (tests/js_driver.py) owns timing and assertions;
// this file only translates commands into partysocket calls and reports what happens.
//
// Commands (each may carry "id"; the reply is {"reply": id, ...}):
//   {"op":"open","sock":NAME,"options":{host,room,party,id,maxRetries,...},"token":T}
//       new PartySocket({...options, WebSocket: ws, query: async () => ({token})}); the query
//       function reads the socket's current token, so "set_token" changes the next attempt's.
//       With "history":true the socket uses examples/chat/static/history.js, the recovery
//       snippet of the history guide: its query adds since/epoch, messages are unwrapped,
//       position frames are not reported, and a resync is the event {"event":"resync",reason}.
//   {"op":"set_token","sock":NAME,"token":T}
//   {"op":"send","sock":NAME,"text":S} | {"op":"send","sock":NAME,"bytes":[..]}
//   {"op":"close","sock":NAME,"code":C,"reason":R}
//   {"op":"reconnect","sock":NAME}   ps.reconnect()
//   {"op":"info","sock":NAME}   -> {id, url, roomUrl, readyState, retryCount, queryCalls}
//   {"op":"fetch","options":{host,room,...,token},"init":{method,headers,body}}
//       -> {status, body, url}
//   {"op":"room_url","options":{...}}  -> {roomUrl, id} of a PartySocket that never connects
//   {"op":"exit"}
// Events: {"event":"open"|"message"|"close"|"error","sock":NAME,...}
//   message: {"text":S} or {"bytes":[..],"blob":bool}; close: {code, reason, wasClean}.
import fs from "node:fs";
import readline from "node:readline";
import PartySocket from "partysocket";
import WS from "ws";

// The browser snippet, as the docs show it (a browser module: imported from its source).
const snippet = fs.readFileSync(new URL("../../examples/chat/static/history.js", import.meta.url), "utf8");
const { roomHistory } = await import(`data:text/javascript,${encodeURIComponent(snippet)}`);

const sockets = new Map();
const write = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

async function describeData(data) {
  if (typeof data === "string") return { text: data };
  if (data instanceof Blob) return { bytes: [...new Uint8Array(await data.arrayBuffer())], blob: true };
  if (data instanceof ArrayBuffer) return { bytes: [...new Uint8Array(data)], blob: false };
  if (ArrayBuffer.isView(data)) return { bytes: [...new Uint8Array(data.buffer, data.byteOffset, data.byteLength)], blob: false };
  return { text: String(data) };
}

function open(name, options, token, history) {
  const entry = { token, queryCalls: 0, ps: null, history: null };
  let query = async () => {
    entry.queryCalls += 1;
    return { token: entry.token };
  };
  if (history) {
    entry.history = roomHistory(query, (reason) => write({ event: "resync", sock: name, reason }));
    query = entry.history.query;
  }
  const ps = new PartySocket({ ...options, WebSocket: WS, query });
  entry.ps = ps;
  sockets.set(name, entry);
  ps.addEventListener("open", () => write({ event: "open", sock: name, id: ps.id }));
  ps.addEventListener("message", async (e) => {
    const data = entry.history ? entry.history.receive(e.data) : e.data;
    if (data !== null) write({ event: "message", sock: name, ...(await describeData(data)) });
  });
  ps.addEventListener("close", (e) => write({ event: "close", sock: name, code: e.code, reason: e.reason, wasClean: e.wasClean }));
  ps.addEventListener("error", (e) => write({ event: "error", sock: name, message: String(e.message ?? e.error?.message ?? "") }));
}

async function handle(cmd) {
  const entry = cmd.sock === undefined ? undefined : sockets.get(cmd.sock);
  switch (cmd.op) {
    case "open":
      open(cmd.sock, cmd.options, cmd.token, cmd.history);
      return {};
    case "set_token":
      entry.token = cmd.token;
      return {};
    case "send":
      return { sent: entry.ps.send(cmd.text !== undefined ? cmd.text : new Uint8Array(cmd.bytes)) };
    case "close":
      entry.ps.close(cmd.code, cmd.reason);
      return {};
    case "reconnect":
      entry.ps.reconnect();
      return {};
    case "info": {
      const ps = entry.ps;
      return { id: ps.id, url: ps.url, roomUrl: ps.roomUrl, readyState: ps.readyState, retryCount: ps.retryCount, queryCalls: entry.queryCalls };
    }
    case "fetch": {
      const { token, ...options } = cmd.options;
      const res = await PartySocket.fetch({ ...options, query: async () => ({ token }) }, cmd.init ?? {});
      return { status: res.status, body: await res.text(), url: res.url };
    }
    case "room_url": {
      const ps = new PartySocket({ ...cmd.options, WebSocket: WS, startClosed: true });
      return { roomUrl: ps.roomUrl, id: ps.id };
    }
    case "exit":
      for (const { ps } of sockets.values()) ps.close();
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
