// End-to-end check of examples/chat in headless Chromium (Debian's /usr/bin/chromium),
// driven by playwright-core. Run by tests/test_chat_browser.py, which starts the server.
//
//   node browser.mjs '{"base":"http://127.0.0.1:PORT","room":"r","alice":TOKEN,"bob":TOKEN,
//                      "bad":TOKEN,"shots":DIR}'
//
// Prints one JSON line: what the pages showed. The Python test asserts on it; this script only
// waits for conditions (each bounded) and reports, including the failure that ended a wait.
import path from "node:path";
import { chromium } from "playwright-core";

const cfg = JSON.parse(process.argv[2]);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT = { timeout: 15000 };
const report = { steps: [] };

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});

async function openPage(name, token) {
  const page = await browser.newPage();
  const sockets = [];
  page.on("websocket", (ws) => sockets.push(ws.url()));
  page.on("pageerror", (err) => report.steps.push({ page: name, pageerror: String(err) }));
  await page.goto(`${cfg.base}/?room=${encodeURIComponent(cfg.room)}&token=${encodeURIComponent(token)}`);
  return { name, page, sockets };
}
const texts = (page, selector) => page.$$eval(selector, (els) => els.map((e) => e.textContent.trim()));
async function shot(p) {
  if (cfg.shots) await p.page.screenshot({ path: path.join(cfg.shots, `${p.name}.png`) });
}

// With "recovery" (examples/chat keeps history): bob goes offline; alice writes meanwhile;
// bob's page gets it when it reconnects (history.js asks with since/epoch), and alice
// never saw bob leave (presence grace).
async function recover(alice, bob) {
  await bob.page.evaluate(() => window.chat.socket.close());
  await bob.page.waitForFunction(() => window.chat.socket.readyState === 3, null, WAIT);
  await alice.page.fill("#text", "while bob was away");
  await alice.page.press("#text", "Enter");
  await alice.page.waitForFunction(() => document.querySelectorAll("#messages li").length >= 2, null, WAIT);
  await bob.page.evaluate(() => window.chat.socket.reconnect());
  await bob.page.waitForFunction(() => document.querySelectorAll("#messages li").length >= 2, null, WAIT);
  report.bob_recovered = await texts(bob.page, "#messages li");
  report.bob_ws_urls = bob.sockets;
  report.alice_users_after = await texts(alice.page, "#users li");
}

try {
  const alice = await openPage("alice", cfg.alice);
  await alice.page.waitForFunction(() => document.getElementById("status").textContent === "connected", null, WAIT);
  const bob = await openPage("bob", cfg.bob);
  await bob.page.waitForFunction(() => document.getElementById("status").textContent === "connected", null, WAIT);
  // both pages list both users (presence comes from X-User-ID set by the auth hook)
  for (const p of [alice, bob]) {
    await p.page.waitForFunction(() => document.querySelectorAll("#users li").length === 2, null, WAIT);
  }
  report.alice_users = await texts(alice.page, "#users li");
  report.bob_users = await texts(bob.page, "#users li");

  await alice.page.fill("#text", "hello from alice");
  await alice.page.press("#text", "Enter");
  await bob.page.waitForFunction(() => document.querySelectorAll("#messages li").length >= 1, null, WAIT);
  report.bob_messages = await texts(bob.page, "#messages li");
  await alice.page.waitForFunction(() => document.querySelectorAll("#messages li").length >= 1, null, WAIT);
  report.alice_messages = await texts(alice.page, "#messages li");

  if (cfg.recovery) await recover(alice, bob);

  const mallory = await openPage("mallory", cfg.bad);
  await mallory.page.waitForFunction(() => document.getElementById("status").className === "error", null, WAIT);
  report.bad_status = await mallory.page.textContent("#status");
  report.bad_stopped = await mallory.page.evaluate(() => window.chat.stopped && window.chat.socket.readyState === 3);
  report.bad_ws_attempts = mallory.sockets.length;
  report.bad_composer_disabled = await mallory.page.isDisabled("#text");
  report.good_ws_urls = alice.sockets;
  for (const p of [alice, bob, mallory]) await shot(p);
  report.ok = true;
} catch (err) {
  report.ok = false;
  report.error = String(err?.stack ?? err);
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(report)}\n`);
