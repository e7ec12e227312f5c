// The chat page: joins a room with the real partysocket browser build.
// Page URL: /?room=<room>&token=<token>. The token goes in the query (browsers cannot set
// headers on a WebSocket); the server's before-connect hook checks it and sets X-User-ID.
// The room keeps presence and history: history.js asks for what was missed on reconnects.
import PartySocket from "./vendor/partysocket/index.js";
import { roomHistory } from "./history.js";

const params = new URLSearchParams(location.search);
const room = params.get("room") || "lobby";
const token = params.get("token") || "";
const $ = (id) => document.getElementById(id);
const status = $("status");
const input = $("text");
const button = document.querySelector("#composer button");
$("room").textContent = room;

function setStatus(text, kind) {
  status.textContent = text;
  status.className = kind;
}

function addMessage(from, text) {
  const li = document.createElement("li");
  const who = document.createElement("span");
  who.className = "from";
  who.textContent = `${from}:`;
  li.append(who, document.createTextNode(text));
  $("messages").append(li);
}

const users = new Set();
function showUsers() {
  $("users").replaceChildren(...[...users].sort().map((u) => {
    const li = document.createElement("li");
    li.textContent = u;
    return li;
  }));
}

const history = roomHistory(
  async () => ({ token }),
  () => addMessage("server", "some messages were missed while offline"),
);
const socket = new PartySocket({ host: location.host, room, query: history.query });
// Exposed for tests and for poking at in the console.
window.chat = { socket, stopped: false };

let everOpened = false;
socket.addEventListener("open", () => {
  everOpened = true;
  setStatus("connected", "open");
  input.disabled = button.disabled = false;
});
socket.addEventListener("message", (event) => {
  const text = history.receive(event.data);
  if (text === null) return;
  const data = JSON.parse(text);
  if (data.type === "partydeco.presence") {
    users.clear();
    for (const user of data.users) users.add(user.id);
    showUsers();
  } else if (data.type === "partydeco.join") {
    users.add(data.user);
    showUsers();
  } else if (data.type === "partydeco.leave") {
    users.delete(data.user);
    showUsers();
  } else if (data.type === "message") addMessage(data.from, data.text);
  else if (data.error) addMessage("server", `${data.error}: ${data.detail ?? ""}`);
});

// A refused handshake looks like a network error to browser JavaScript (no status is exposed),
// so on a failed attempt the page asks the room over HTTP with the same token. A 401/403 there
// means the token is bad: say so and stop, instead of reconnecting forever.
socket.addEventListener("close", async () => {
  input.disabled = button.disabled = true;
  if (window.chat.stopped) return;
  setStatus(everOpened ? "reconnecting…" : "connecting…", "");
  try {
    const res = await PartySocket.fetch({ host: location.host, room, query: async () => ({ token }) });
    if (res.status === 401 || res.status === 403) {
      window.chat.stopped = true;
      socket.close();
      setStatus(`Authentication failed: ${(await res.text()) || res.statusText}`, "error");
    }
  } catch {
    // the server is unreachable: keep the reconnect loop going
  }
});

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  socket.send(JSON.stringify({ type: "message", text }));
  input.value = "";
});
