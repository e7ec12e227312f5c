#!/usr/bin/env node
// partydeco's load generator: one workload against one server, one JSON line out.
//
//   node bench/loadgen.mjs SCENARIO --port PORT [--key value ...]
//
// Scenarios: check | fanout | echo | connect | http | rooms (see OPTIONS below).
// With --freshkey PEM, connect and http sign a new RS256 JWT for every connect or
// request (before the clock starts), so a server cannot reuse a verification.
// No dependencies: the WebSocket client is written here on node:net, so that
// the load generator spends its CPU on the workload and nothing else. Every
// message is checked; any mismatch is counted in "errors" and the exit code is 1.

import net from 'node:net';
import { createHash, createPrivateKey, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { constants as zlibConstants, inflateRawSync } from 'node:zlib';
import { performance } from 'node:perf_hooks';

const OPTIONS = {
  host: '127.0.0.1',
  port: 0,
  party: 'main',
  token: 'bench-token',
  timeout: 60, // seconds for the whole scenario
  size: 64, // bytes per message (fanout, echo, rooms)
  receivers: 50, // fanout: receivers in the room (plus one sender)
  messages: 1000, // fanout: measured messages; rooms: messages per room
  warmup: 200, // fanout: messages before measuring; echo: round trips per client
  window: 32, // fanout: messages not yet delivered to every receiver
  clients: 16, // echo: clients, each in its own room
  roundtrips: 500, // echo: measured round trips per client
  connections: 1000, // connect: connections to open and close
  concurrency: 16, // connect, http: in flight at once
  rooms: 10, // connect: rooms to spread over; rooms: rooms
  perroom: 3, // rooms: clients per room
  requests: 5000, // http: requests
  freshkey: '', // connect, http: RSA private key (PEM file) to sign a new token per connect/request
  issuer: 'https://bench.partydeco.invalid', // the fresh tokens' iss (bench/app.py's)
  audience: 'partydeco-bench', // the fresh tokens' aud (bench/app.py's)
  kid: 'bench-1', // the fresh tokens' kid (bench/app.py's)
  history: 0, // 1: the party keeps history (frames are envelopes; see unwrap())
  deflate: 0, // 1: offer permessage-deflate (server_no_context_takeover) and inflate what comes
};

function parseArgs(argv) {
  const opts = { ...OPTIONS, scenario: argv[0] };
  for (let i = 1; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in OPTIONS)) throw new Error(`unknown option ${argv[i]}`);
    const value = argv[i + 1];
    opts[key] = typeof OPTIONS[key] === 'number' ? Number(value) : value;
  }
  if (!opts.port) throw new Error('--port is required');
  return opts;
}

const clock = () => performance.now();
const tag = randomBytes(3).toString('hex');

class Errors {
  constructor() { this.count = 0; this.kinds = new Map(); }
  add(what) {
    this.count++;
    const key = String(what).slice(0, 200);
    this.kinds.set(key, (this.kinds.get(key) || 0) + 1);
  }
  report() { return [...this.kinds].slice(0, 10).map(([k, n]) => `${k} (x${n})`); }
}

// ------------------------------------------------------------------ WebSocket client

const KEY = randomBytes(16).toString('base64');
const ACCEPT = createHash('sha1').update(KEY + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
const MASK = randomBytes(4);

function frame(opcode, payload) {
  const n = payload.length;
  const head = n < 126 ? 6 : n < 65536 ? 8 : 14;
  const out = Buffer.allocUnsafe(head + n);
  out[0] = 0x80 | opcode;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 65536) { out[1] = 0x80 | 126; out.writeUInt16BE(n, 2); }
  else { out[1] = 0x80 | 127; out.writeBigUInt64BE(BigInt(n), 2); }
  MASK.copy(out, head - 4);
  for (let i = 0; i < n; i++) out[head + i] = payload[i] ^ MASK[i & 3];
  return out;
}

const CLOSE_1000 = frame(8, Buffer.from([0x03, 0xe8]));
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
// One whole compressed message (the servers here do not fragment what they send).
function inflate(payload) {
  return inflateRawSync(Buffer.concat([payload, TAIL]), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
}

// A client socket: call .send(text); gets onText(text), onClose(code) after onOpen().
// onOpen(err) is called once: null after the handshake, or a string when refused.
class Client {
  constructor(opts, path, { onOpen, onText, onClose }) {
    this.onOpen = onOpen; this.onText = onText; this.onClose = onClose || (() => {});
    this.open = false; this.closed = false; this.closeSent = false;
    this.buf = null; this.parts = null; this.status = 0;
    const sock = this.sock = net.connect(opts.port, opts.host);
    sock.setNoDelay(true);
    sock.on('data', (d) => this.data(d));
    sock.on('error', (e) => this.fail(`socket error: ${e.code || e.message}`));
    sock.on('close', () => this.fail('connection lost'));
    // With --deflate, each message the server compresses must be inflatable on its own,
    // so the offer asks for server_no_context_takeover (any server may grant it).
    const ext = opts.deflate ? 'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n' : '';
    sock.write(`GET ${path} HTTP/1.1\r\nHost: ${opts.host}:${opts.port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n${ext}\r\n`);
  }
  send(text) { this.sock.write(frame(1, Buffer.from(text))); }
  close() { if (!this.closeSent && !this.closed) { this.closeSent = true; this.sock.write(CLOSE_1000); } }
  fail(why) {
    if (this.closed) return;
    this.closed = true;
    this.sock.destroy();
    if (!this.open) this.onOpen(why, this.status); else this.onClose(1006, why);
  }
  data(chunk) {
    let buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    if (!this.open) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) { this.buf = buf; return; }
      const head = buf.toString('latin1', 0, end);
      this.status = Number(head.slice(9, 12));
      if (this.status !== 101) { this.fail(`handshake refused: HTTP ${this.status}`); return; }
      const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head);
      if (!accept || accept[1] !== ACCEPT) { this.fail('bad Sec-WebSocket-Accept'); return; }
      this.open = true;
      this.deflate = /\r\nsec-websocket-extensions:[^\r]*permessage-deflate/i.test(head);
      this.onOpen(null, 101);
      buf = buf.subarray(end + 4);
    }
    let at = 0;
    while (buf.length - at >= 2 && !this.closed) {
      const b0 = buf[at], b1 = buf[at + 1];
      let len = b1 & 0x7f, off = at + 2;
      if (b1 & 0x80) { this.fail('server frame is masked'); return; }
      if (len === 126) { if (buf.length - at < 4) break; len = buf.readUInt16BE(at + 2); off += 2; }
      else if (len === 127) { if (buf.length - at < 10) break; len = Number(buf.readBigUInt64BE(at + 2)); off += 8; }
      if (buf.length < off + len) break;
      const payload = buf.subarray(off, off + len);
      at = off + len;
      this.frameIn(b0 & 0x0f, (b0 & 0x80) !== 0, (b0 & 0x40) && this.deflate ? inflate(payload) : payload);
    }
    this.buf = at < buf.length ? buf.subarray(at) : null;
  }
  frameIn(opcode, fin, payload) {
    if (opcode === 9) { this.sock.write(frame(10, payload)); return; }
    if (opcode === 10) return;
    if (opcode === 8) {
      const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      this.close();
      this.closed = true;
      this.sock.end();
      this.onClose(code, '');
      return;
    }
    if (opcode === 2) { this.onText(null); return; }
    if (opcode === 1 && fin) { this.onText(payload.toString()); return; }
    // fragmented text (servers here do not fragment small frames, but be correct)
    if (opcode === 1) this.parts = [Buffer.from(payload)];
    else if (opcode === 0 && this.parts) {
      this.parts.push(Buffer.from(payload));
      if (fin) { const text = Buffer.concat(this.parts).toString(); this.parts = null; this.onText(text); }
    }
  }
}

// A party with history sends a position frame first, then every broadcast as
// {"type":"partydeco.message","offset":N,"data":"<text>"}. unwrap() checks the envelope
// and that offsets only grow (strictly: a sender is left out of its own broadcasts), and
// returns the text; the bench's texts are letters, digits, "|" and ".", never escaped.
const POSITION = '{"type":"partydeco.position","epoch":"';
const ENVELOPE = '{"type":"partydeco.message","offset":';
const DATA = ',"data":"';
function unwrap(text, client, errors) {
  if (text === null || !text.startsWith(ENVELOPE)) return text;
  const comma = text.indexOf(DATA, ENVELOPE.length);
  const offset = Number(text.slice(ENVELOPE.length, comma));
  if (comma < 0 || !text.endsWith('"}') || !Number.isInteger(offset)) {
    errors.add(`bad envelope: ${text.slice(0, 60)}`);
    return null;
  }
  if (offset <= client.offset) errors.add(`offset ${offset} after ${client.offset}`);
  client.offset = offset;
  return text.slice(comma + DATA.length, -2);
}

function roomPath(opts, room, withToken = true, token = opts.token) {
  const id = randomBytes(8).toString('hex');
  const q = withToken ? `&token=${encodeURIComponent(token)}` : '';
  return `/parties/${opts.party}/${encodeURIComponent(room)}?_pk=${id}${q}`;
}

// Open a client and wait for the server's "hello"; later text frames go to onText.
function connect(opts, room, errors, onText, onClose) {
  return new Promise((resolve) => {
    const t0 = clock();
    let greeted = false;
    const client = new Client(opts, roomPath(opts, room), {
      onOpen: (err) => { if (err) { errors.add(err); resolve(null); } },
      onText: (frame) => {
        let text = frame;
        if (opts.history) {
          if (client.offset === undefined) {
            if (!String(frame).startsWith(POSITION)) errors.add(`first message is not a position: ${frame}`);
            client.offset = JSON.parse(frame).offset;
            return;
          }
          text = unwrap(frame, client, errors);
          if (text === null) return;
        }
        if (greeted) { onText(text, client); return; }
        greeted = true;
        if (text !== 'hello') { errors.add(`first message is not hello: ${text}`); client.close(); resolve(null); return; }
        client.helloMs = clock() - t0;
        resolve(client);
      },
      onClose: (code, why) => {
        if (!greeted) { errors.add(`closed before hello: ${code} ${why || ''}`); resolve(null); }
        else if (onClose) onClose(code, client);
      },
    });
  });
}

function closeAll(clients) {
  return Promise.all(clients.filter(Boolean).map((c) => new Promise((resolve) => {
    if (c.closed) { resolve(); return; }
    const timer = setTimeout(() => { c.sock.destroy(); resolve(); }, 3000);
    c.onClose = () => { clearTimeout(timer); resolve(); };
    c.close();
  })));
}

async function connectMany(opts, rooms, errors, onText) {
  const out = [];
  for (let i = 0; i < rooms.length; i += 64) {
    out.push(...await Promise.all(rooms.slice(i, i + 64).map((room) => connect(opts, room, errors, onText))));
  }
  return out;
}

// "SEQ|MS|" then filler that depends on SEQ, to SIZE bytes; the receiver rebuilds and compares.
function filler(seq, n) { return String.fromCharCode(97 + (seq % 26)).repeat(Math.max(0, n)); }
function message(prefix, seq, size) {
  const head = `${prefix}${seq}|${clock().toFixed(3)}|`;
  return head + filler(seq, size - head.length);
}
function parse(text, prefix, size) {
  if (text === null) return 'unexpected binary frame';
  if (text.length !== size || !text.startsWith(prefix)) return `bad message: ${text.slice(0, 40)}`;
  const a = text.indexOf('|', prefix.length), b = text.indexOf('|', a + 1);
  const seq = Number(text.slice(prefix.length, a)), sent = Number(text.slice(a + 1, b));
  if (!Number.isInteger(seq) || b < 0 || text.slice(b + 1) !== filler(seq, size - b - 1)) {
    return `corrupt message: ${text.slice(0, 40)}`;
  }
  return { seq, sent };
}

// ------------------------------------------------------------------ scenarios

async function fanout(opts, errors) {
  const room = `fanout-${tag}`;
  const total = opts.warmup + opts.messages;
  const got = new Int32Array(total); // receivers that have message seq
  const lat = [];
  let low = 0; let live = 0; let wake = null;
  const onText = (text, c) => {
    const m = parse(text, '', opts.size);
    if (typeof m === 'string') { errors.add(m); return; }
    if (m.seq !== c.next) errors.add(`out of order: got ${m.seq}, expected ${c.next}`);
    c.next = m.seq + 1;
    if (m.seq >= total) return;
    if (m.seq >= opts.warmup) lat.push(clock() - m.sent);
    if (++got[m.seq] === live) { while (low < total && got[low] === live) low++; if (wake) wake(); }
  };
  const receivers = (await connectMany(opts, Array(opts.receivers).fill(room), errors, onText)).filter(Boolean);
  for (const c of receivers) c.next = 0;
  live = receivers.length;
  if (live < opts.receivers) errors.add(`${opts.receivers - live} receivers did not connect`);
  const sender = await connect(opts, room, errors, (text) => errors.add(`the sender got a message back: ${String(text).slice(0, 30)}`));
  if (!sender || live === 0) return { rate: 0 };
  const deadline = clock() + opts.timeout * 1000;
  const waitLow = () => new Promise((resolve) => { wake = () => { wake = null; resolve(); }; setTimeout(() => { if (wake) wake(); }, 100); });
  async function sendRange(from, to) {
    let seq = from;
    while (low < to) {
      if (clock() > deadline) { errors.add(`timeout: ${to - low} messages not delivered to every receiver`); return false; }
      while (seq < to && seq - low < opts.window) sender.send(message('', seq++, opts.size));
      await waitLow();
    }
    return true;
  }
  if (!(await sendRange(0, opts.warmup))) return { rate: 0 };
  const cpu0 = process.cpuUsage(); const t0 = clock();
  const ok = await sendRange(opts.warmup, total);
  const seconds = (clock() - t0) / 1000; const cpu = process.cpuUsage(cpu0);
  await new Promise((r) => setTimeout(r, 20)); // anything sent back to the sender arrives now
  await closeAll([...receivers, sender]);
  const delivered = ok ? opts.messages * live : 0;
  return { count: delivered, seconds, lat, cpu };
}

async function echo(opts, errors) {
  const rooms = Array.from({ length: opts.clients }, (_, i) => `echo-${tag}-${i}`);
  const clients = (await connectMany(opts, rooms, errors, (text, c) => c.reply(text))).filter(Boolean);
  if (clients.length < opts.clients) errors.add(`${opts.clients - clients.length} clients did not connect`);
  const lat = [];
  const deadline = clock() + opts.timeout * 1000;
  const roundtrip = (c, seq, keep) => new Promise((resolve) => {
    const text = message('echo:', seq, opts.size);
    const t0 = clock();
    c.reply = (back) => {
      c.reply = (extra) => errors.add(`unexpected message: ${String(extra).slice(0, 30)}`);
      if (back !== text) errors.add(`wrong echo: ${String(back).slice(0, 30)}`);
      else if (keep) lat.push(clock() - t0);
      resolve(true);
    };
    c.onClose = () => { errors.add('closed during round trip'); resolve(false); };
    c.send(text);
  });
  const run = async (c, n, keep) => {
    for (let i = 0; i < n && clock() < deadline; i++) if (!(await roundtrip(c, i, keep))) return;
  };
  await Promise.all(clients.map((c) => run(c, opts.warmup, false)));
  const cpu0 = process.cpuUsage(); const t0 = clock();
  await Promise.all(clients.map((c) => run(c, opts.roundtrips, true)));
  const seconds = (clock() - t0) / 1000; const cpu = process.cpuUsage(cpu0);
  if (lat.length < opts.roundtrips * clients.length) errors.add(`${opts.roundtrips * clients.length - lat.length} round trips missing`);
  await closeAll(clients);
  return { count: lat.length, seconds, lat, cpu };
}

// Storage-heavy: CLIENTS sockets in ONE room each send ROUNDTRIPS "count:" messages, one
// at a time; the server reads the room's counter from storage, writes it back plus one
// and answers "count:N". Every N from 1 to CLIENTS*ROUNDTRIPS must come back exactly once
// (a lost update repeats a number), so the run also checks the room's input gate.
async function counter(opts, errors) {
  const room = `counter-${tag}`;
  const rooms = Array.from({ length: opts.clients }, () => room);
  const clients = (await connectMany(opts, rooms, errors, (text, c) => c.reply(text))).filter(Boolean);
  if (clients.length < opts.clients) errors.add(`${opts.clients - clients.length} clients did not connect`);
  const seen = new Set();
  const lat = [];
  const deadline = clock() + opts.timeout * 1000;
  const once = (c) => new Promise((resolve) => {
    const t0 = clock();
    c.reply = (back) => {
      c.reply = (extra) => errors.add(`unexpected message: ${String(extra).slice(0, 30)}`);
      const n = Number(String(back).slice(6));
      if (!String(back).startsWith('count:') || !Number.isInteger(n)) errors.add(`bad count: ${String(back).slice(0, 30)}`);
      else if (seen.has(n)) errors.add('a count came back twice (lost update)');
      else { seen.add(n); lat.push(clock() - t0); }
      resolve(true);
    };
    c.onClose = () => { errors.add('closed during a count'); resolve(false); };
    c.send('count:');
  });
  const run = async (c) => {
    for (let i = 0; i < opts.roundtrips && clock() < deadline; i++) if (!(await once(c))) return;
  };
  const cpu0 = process.cpuUsage(); const t0 = clock();
  await Promise.all(clients.map(run));
  const seconds = (clock() - t0) / 1000; const cpu = process.cpuUsage(cpu0);
  const total = opts.roundtrips * clients.length;
  for (let n = 1; n <= total; n++) if (!seen.has(n)) { errors.add(`count ${n} never came back`); break; }
  await closeAll(clients);
  return { count: seen.size, seconds, lat, cpu };
}

// Open, wait for hello, close cleanly (the server's close frame must come back).
function connectOnce(opts, room, token) {
  return new Promise((resolve) => {
    const t0 = clock();
    let hello = 0;
    const timer = setTimeout(() => { client.sock.destroy(); resolve('timeout'); }, 10000);
    const client = new Client(opts, roomPath(opts, room, true, token), {
      onOpen: (err) => { if (err) { clearTimeout(timer); resolve(err); } },
      onText: (text) => {
        if (hello) return;
        if (text !== 'hello') { clearTimeout(timer); client.fail('x'); resolve(`first message is not hello: ${text}`); return; }
        hello = clock() - t0;
        client.close();
      },
      onClose: (code, why) => {
        clearTimeout(timer);
        if (!hello) resolve(`closed before hello: ${code} ${why || ''}`);
        else if (code !== 1000) resolve(`closed with ${code}`);
        else resolve(hello);
      },
    });
  });
}

async function lanes(n, concurrency, one) {
  let next = 0;
  const lane = async () => { while (next < n) await one(next++); };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, lane));
}

// RS256 JWTs signed with the --freshkey key, one per use, each with its own sub.
function freshTokens(opts, n) {
  if (!opts.freshkey) return null;
  const key = createPrivateKey(readFileSync(opts.freshkey));
  const b64url = (text) => Buffer.from(text).toString('base64url');
  const head = b64url(JSON.stringify({ alg: 'RS256', kid: opts.kid }));
  const now = Math.floor(Date.now() / 1000);
  return Array.from({ length: n }, (_, i) => {
    const claims = { iss: opts.issuer, aud: opts.audience, sub: `user-${tag}-${i}`, iat: now, exp: now + 3600 };
    const input = `${head}.${b64url(JSON.stringify(claims))}`;
    return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
  });
}

async function connections(opts, errors) {
  const lat = [];
  const tokens = freshTokens(opts, opts.connections);
  const cpu0 = process.cpuUsage(); const t0 = clock();
  await lanes(opts.connections, opts.concurrency, async (i) => {
    const r = await connectOnce(opts, `connect-${tag}-${i % opts.rooms}`, tokens ? tokens[i] : opts.token);
    if (typeof r === 'number') lat.push(r); else errors.add(r);
  });
  return { count: lat.length, seconds: (clock() - t0) / 1000, lat, cpu: process.cpuUsage(cpu0) };
}

// A keep-alive HTTP/1.1 connection doing one GET at a time.
class HttpLane {
  constructor(opts, path, auth) {
    this.opts = opts;
    this.head = `GET ${path} HTTP/1.1\r\nHost: ${opts.host}:${opts.port}\r\n`;
    this.request = this.build(auth ? opts.token : null);
    this.sock = null; this.buf = null; this.done = null;
  }
  build(token) {
    return Buffer.from(this.head + (token ? `Authorization: Bearer ${token}\r\n` : '') + '\r\n', 'latin1');
  }
  // One GET; with a token, that token instead of the lane's own.
  get(token) {
    const request = token ? this.build(token) : this.request;
    return new Promise((resolve) => {
      this.done = resolve; this.buf = null;
      if (!this.sock || this.sock.destroyed) {
        const sock = this.sock = net.connect(this.opts.port, this.opts.host);
        sock.setNoDelay(true);
        sock.on('data', (d) => { if (sock === this.sock) this.data(d); });
        sock.on('error', () => {});
        sock.on('close', () => { if (sock === this.sock) { this.sock = null; this.finish('connection closed', 0, ''); } });
      }
      this.sock.write(request);
    });
  }
  finish(err, status, body) { const done = this.done; this.done = null; if (done) done({ err, status, body }); }
  data(chunk) {
    const buf = this.buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = buf.toString('latin1', 0, end).toLowerCase();
    const length = /\r\ncontent-length:\s*(\d+)/.exec(head);
    if (!length) { this.finish('no content-length', 0, ''); this.sock.destroy(); return; }
    if (buf.length < end + 4 + Number(length[1])) return;
    const body = buf.toString('utf8', end + 4, end + 4 + Number(length[1]));
    if (/\r\nconnection:\s*close/.test(head)) { const s = this.sock; this.sock = null; s.end(); }
    this.finish(null, Number(head.slice(9, 12)), body);
  }
  close() { if (this.sock) this.sock.destroy(); this.sock = null; }
}

function checkInfo(room, r) {
  if (r.err) return r.err;
  if (r.status !== 200) return `HTTP ${r.status}`;
  try {
    const info = JSON.parse(r.body);
    if (info.room !== room || !Number.isInteger(info.connections)) return `wrong JSON: ${r.body.slice(0, 60)}`;
  } catch { return `not JSON: ${r.body.slice(0, 60)}`; }
  return null;
}

async function http(opts, errors) {
  const room = `http-${tag}`;
  const path = `/parties/${opts.party}/${room}`;
  const pool = Array.from({ length: opts.concurrency }, () => new HttpLane(opts, path, true));
  const lat = [];
  const tokens = freshTokens(opts, opts.requests);
  const cpu0 = process.cpuUsage(); const t0 = clock();
  let free = pool.slice();
  await lanes(opts.requests, opts.concurrency, async (i) => {
    const lane = free.pop();
    const t = clock();
    const r = await lane.get(tokens ? tokens[i] : undefined);
    const bad = checkInfo(room, r);
    if (bad) errors.add(bad); else lat.push(clock() - t);
    free.push(lane);
  });
  const seconds = (clock() - t0) / 1000; const cpu = process.cpuUsage(cpu0);
  for (const lane of pool) lane.close();
  free = null;
  return { count: lat.length, seconds, lat, cpu };
}

// Many rooms at once: PERROOM clients in each of ROOMS rooms; in every room the clients
// take turns broadcasting MESSAGES messages, each waited for by the room's other clients.
async function manyRooms(opts, errors) {
  const names = [];
  for (let r = 0; r < opts.rooms; r++) for (let k = 0; k < opts.perroom; k++) names.push(`rooms-${tag}-${r}`);
  const lat = [];
  const onText = (text, c) => c.room.receive(text, c);
  const ct0 = clock();
  const clients = await connectMany(opts, names, errors, onText);
  const connectSeconds = (clock() - ct0) / 1000;
  const rooms = [];
  for (let r = 0; r < opts.rooms; r++) {
    const members = clients.slice(r * opts.perroom, (r + 1) * opts.perroom);
    if (members.some((c) => !c)) continue;
    const room = { members, seq: 0, waiting: 0, done: null };
    room.receive = (text, c) => {
      const m = parse(text, '', opts.size);
      if (typeof m === 'string') { errors.add(m); return; }
      if (m.seq !== room.seq || c === room.members[room.seq % opts.perroom]) { errors.add(`room got seq ${m.seq} (expected ${room.seq}) or its own message`); return; }
      lat.push(clock() - m.sent);
      if (--room.waiting === 0) room.done();
    };
    for (const c of members) c.room = room;
    rooms.push(room);
  }
  if (rooms.length < opts.rooms) errors.add(`${opts.rooms - rooms.length} rooms did not fill`);
  const deadline = clock() + opts.timeout * 1000;
  const play = async (room) => {
    for (; room.seq < opts.messages; room.seq++) {
      if (clock() > deadline) { errors.add('timeout'); return; }
      await new Promise((resolve) => {
        room.waiting = opts.perroom - 1; room.done = resolve;
        room.members[room.seq % opts.perroom].send(message('', room.seq, opts.size));
      });
    }
  };
  const cpu0 = process.cpuUsage(); const t0 = clock();
  await Promise.all(rooms.map(play));
  const seconds = (clock() - t0) / 1000; const cpu = process.cpuUsage(cpu0);
  await closeAll(clients);
  const expected = rooms.length * opts.messages * (opts.perroom - 1);
  if (lat.length !== expected) errors.add(`${expected - lat.length} deliveries missing`);
  return { count: lat.length, seconds, lat, cpu, connect_rate: clients.filter(Boolean).length / connectSeconds };
}

// The protocol, once: hello, 403 without token, echo to the sender only, broadcast to the others, HTTP.
async function check(opts, errors) {
  const room = `check-${tag}`;
  const refused = await new Promise((resolve) => {
    new Client(opts, roomPath(opts, room, false), {
      onOpen: (err, status) => resolve(err ? status : 101), onText: () => {},
    });
  });
  if (refused !== 403) errors.add(`connect without token: expected HTTP 403, got ${refused}`);
  const inbox = new Map();
  const onText = (text, c) => { if (!inbox.has(c)) inbox.set(c, []); inbox.get(c).push(text); };
  const [a, b, c] = await connectMany(opts, [room, room, room], errors, onText);
  if (!a || !b || !c) return {};
  a.send('echo:ping');
  b.send('hi all');
  await new Promise((r) => setTimeout(r, 300));
  // a's echo and b's broadcast come from different sockets: either order is right
  const got = (x) => JSON.stringify([...(inbox.get(x) || [])].sort());
  if (got(a) !== '["echo:ping","hi all"]') errors.add(`a got ${got(a)}`);
  if (got(b) !== '[]') errors.add(`b (the sender) got ${got(b)}`);
  if (got(c) !== '["hi all"]') errors.add(`c got ${got(c)}`);
  const lane = new HttpLane(opts, `/parties/${opts.party}/${room}`, true);
  const bad = checkInfo(room, await lane.get());
  if (bad) errors.add(`GET with token: ${bad}`);
  lane.close();
  const anon = new HttpLane(opts, `/parties/${opts.party}/${room}`, false);
  const r = await anon.get();
  if (r.status !== 401) errors.add(`GET without token: expected 401, got ${r.status || r.err}`);
  anon.close();
  await closeAll([a, b, c]);
  return {};
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const run = { check, fanout, echo, connect: connections, http, rooms: manyRooms, counter }[opts.scenario];
  if (!run) throw new Error(`unknown scenario ${opts.scenario}`);
  const errors = new Errors();
  const watchdog = setTimeout(() => { errors.add('scenario timed out'); finish({}); }, (opts.timeout + 30) * 1000);
  let result = {};
  try { result = await run(opts, errors); } catch (e) { errors.add(`exception: ${e.stack || e}`); }
  clearTimeout(watchdog);
  finish(result);

  function finish(r) {
    const lat = Float64Array.from(r.lat || []).sort();
    const out = {
      scenario: opts.scenario,
      count: r.count || 0,
      seconds: r.seconds || 0,
      rate: r.seconds ? r.count / r.seconds : 0,
      p50_ms: percentile(lat, 50),
      p99_ms: percentile(lat, 99),
      lg_cpu: r.cpu && r.seconds ? (r.cpu.user + r.cpu.system) / 1e6 / r.seconds : null,
      errors: errors.count,
      error_kinds: errors.report(),
    };
    if (r.connect_rate) out.connect_rate = r.connect_rate;
    process.stdout.write(JSON.stringify(out) + '\n');
    process.exit(errors.count ? 1 : 0);
  }
}

main();
