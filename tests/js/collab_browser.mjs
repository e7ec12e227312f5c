// End-to-end check of examples/collab in headless Chromium, driven by playwright-core.
// Run by tests/test_collab_example.py, which starts (and restarts) the server.
//
//   node collab_browser.mjs '{"base":"http://127.0.0.1:PORT","room":"r","phase":"edit"|"reload",
//                             "shots":DIR}'
//
// phase "edit": two pages (alice, bob) type into the shared text and see each other's edits,
//   presence and the server's word count. phase "reload": a new page, after a server restart,
//   shows the text. Prints one JSON line; the Python test asserts on it.
import path from "node:path";
import { chromium } from "playwright-core";

const cfg = JSON.parse(process.argv[2]);
const WAIT = { timeout: 15000 };
const report = { steps: [] };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run"],
});

async function openPage(name, token) {
  const page = await browser.newPage();
  page.on("pageerror", (err) => report.steps.push({ page: name, pageerror: String(err) }));
  await page.goto(`${cfg.base}/?room=${encodeURIComponent(cfg.room)}&token=${token}`);
  await page.waitForFunction(() => document.getElementById("status").textContent === "synced", null, WAIT);
  return { name, page };
}
const value = (p) => p.page.inputValue("#text");
const waitText = (p, text) => p.page.waitForFunction((t) => document.getElementById("text").value === t, text, WAIT);
async function shot(p) {
  if (cfg.shots) await p.page.screenshot({ path: path.join(cfg.shots, `${cfg.phase}-${p.name}.png`) });
}

try {
  if (cfg.phase === "edit") {
    const alice = await openPage("alice", "alice-token");
    const bob = await openPage("bob", "bob-token");
    await alice.page.click("#text");
    await alice.page.keyboard.type("hello from alice");
    await waitText(bob, "hello from alice");
    await bob.page.click("#text");
    await bob.page.keyboard.press("End");
    await bob.page.keyboard.type(" and bob");
    await waitText(alice, "hello from alice and bob");
    report.alice_text = await value(alice);
    report.bob_text = await value(bob);
    for (const p of [alice, bob]) {
      await p.page.waitForFunction(() => document.getElementById("words").textContent === "5", null, WAIT);
      await p.page.waitForFunction(() => document.querySelectorAll("#users li").length === 2, null, WAIT);
    }
    report.words = await bob.page.textContent("#words");
    report.users = (await alice.page.$$eval("#users li", (els) => els.map((e) => e.textContent))).sort();
    for (const p of [alice, bob]) await shot(p);
  } else {
    const carol = await openPage("carol", "bob-token");
    report.reload_text = await value(carol);
    await carol.page.waitForFunction(() => document.getElementById("words").textContent !== "0", null, WAIT);
    report.words = await carol.page.textContent("#words");
    await shot(carol);
  }
  report.ok = true;
} catch (err) {
  report.ok = false;
  report.error = String(err?.stack ?? err);
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(report)}\n`);
