// The page: a <textarea> bound to the Y.Text "text" of the room's document, synced by
// the npm y-partykit provider (vendored in vendor/yjs, see its SOURCE.md), plus
// presence from awareness and a word count that the server keeps in the Y.Map "stats".
import { Y, YPartyKitProvider } from "./vendor/yjs/yjs-provider.js";

const params = new URLSearchParams(location.search);
const room = params.get("room") || "notes";
const token = params.get("token") || "";
const name = params.get("name") || token.replace(/-token$/, "") || "anonymous";
const COLORS = ["#c0392b", "#2471a3", "#1e8449", "#8e44ad", "#b9770e", "#17a589"];

const doc = new Y.Doc();
const text = doc.getText("text");
const stats = doc.getMap("stats");
const provider = new YPartyKitProvider(location.host, room, doc, {
  party: "docs",
  params: { token },
});
provider.awareness.setLocalStateField("user", {
  name,
  color: COLORS[doc.clientID % COLORS.length],
});

const area = document.getElementById("text");
const statusEl = document.getElementById("status");
let shown = "";

// Local edits: turn the textarea's new value into one delete and one insert.
area.addEventListener("input", () => {
  const next = area.value;
  let start = 0;
  while (start < shown.length && start < next.length && shown[start] === next[start]) start++;
  let end = 0;
  while (
    end < shown.length - start && end < next.length - start &&
    shown[shown.length - 1 - end] === next[next.length - 1 - end]
  ) end++;
  doc.transact(() => {
    text.delete(start, shown.length - start - end);
    text.insert(start, next.slice(start, next.length - end));
  });
  shown = next;
});

// Remote edits: show the new text and keep the caret where it was, relative to the text.
text.observe((event) => {
  if (event.transaction.local) return;
  const value = text.toString();
  let { selectionStart: s, selectionEnd: e } = area;
  let index = 0;
  for (const op of event.delta) {
    if (op.retain) index += op.retain;
    else if (op.insert) {
      if (index < s) s += op.insert.length;
      if (index < e) e += op.insert.length;
      index += op.insert.length;
    } else if (op.delete) {
      if (index < s) s -= Math.min(op.delete, s - index);
      if (index < e) e -= Math.min(op.delete, e - index);
    }
  }
  area.value = shown = value;
  area.setSelectionRange(s, e);
});

stats.observe(() => {
  document.getElementById("words").textContent = String(stats.get("words") ?? 0);
});

provider.on("status", ({ status }) => {
  statusEl.textContent = status;
  statusEl.className = "";
});
provider.on("synced", (synced) => {
  if (!synced) return;
  statusEl.textContent = "synced";
  statusEl.className = "synced";
  area.disabled = false;
});

provider.awareness.on("change", () => {
  const list = document.getElementById("users");
  list.replaceChildren(
    ...[...provider.awareness.getStates().values()]
      .filter((state) => state.user)
      .map(({ user }) => {
        const li = document.createElement("li");
        li.textContent = user.name;
        li.style.background = user.color;
        return li;
      }),
  );
});

window.collab = { doc, text, provider };
