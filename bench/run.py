"""partydeco against its baselines, same workloads, one run: ``python bench/run.py``.

Starts every server on a free loopback port (partydeco's bench app, a minimal
Quart app, a bare ASGI app on Hypercorn; with ``--uvicorn`` also partydeco and
Starlette on Uvicorn; with ``--partykit DIR`` the real PartyKit dev server),
checks that each speaks the protocol, then runs each workload against each
server back to back for several rounds, rotating the order. Prints the best
rate per server, its ratio to the baseline (minimal Quart), the range of that
ratio over the rounds, p50/p99 latencies, and the target ratios. Any error in
any message fails the run.

The ``-fresh`` workloads send a new RS256 JWT on every connect or request (signed
by the load generator, before the clock starts, with a key written to the results
directory that partydeco's servers also get): nothing a server remembers about a
token helps. The plain ``connect`` and ``http`` reuse one token, as real clients do.

Each server runs in its own process group, pinned to one CPU with everything it
starts; its CPU is summed over the group (the PartyKit dev server is node,
workerd and esbuild), and stopping it stops the whole group.

Requires node (no npm packages). Results also go to ``bench/results/`` as JSON.

    python bench/run.py                         # ~4 min on 2 cores
    python bench/run.py --rounds 5 --uvicorn    # steadier, with Uvicorn
    python bench/run.py --scenarios fanout50,http --servers quart,partydeco
    python bench/run.py --scenarios fanout50,fanout500 --servers quart,partydeco,partydeco-history
    python bench/run.py --against ../old-checkout  # this tree against another one
    python bench/run.py --rounds 5 --uvicorn --partykit /tmp/pd/anchors/partykit
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent) not in sys.path:  # imported as bench.run (the tests)
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import answers_http, group_cpu_seconds, pinned_to, stop_group

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable

#: name -> (command, description); {port} and {keyfile} are filled in.
SERVERS: dict[str, tuple[list[str], str]] = {
    "quart": ([PY, "bench/refs.py", "quart", "--port", "{port}"], "minimal Quart on Hypercorn"),
    "asgi-hypercorn": (
        [PY, "bench/refs.py", "asgi", "--port", "{port}"],
        "bare ASGI app on Hypercorn",
    ),
    "asgi-hypercorn-uvloop": (
        [PY, "bench/refs.py", "asgi", "--uvloop", "--port", "{port}"],
        "bare ASGI app on Hypercorn with uvloop",
    ),
    "partydeco": (
        [PY, "bench/app.py", "--key-file", "{keyfile}", "--port", "{port}"],
        "bench/app.py on Hypercorn",
    ),
    "partydeco-metrics": (
        [PY, "bench/app.py", "--metrics", "--key-file", "{keyfile}", "--port", "{port}"],
        "bench/app.py on Hypercorn with Prometheus metrics on",
    ),
    "partydeco-nocache": (
        [PY, "bench/app.py", "--token-cache", "off", "--key-file", "{keyfile}", "--port", "{port}"],
        "bench/app.py on Hypercorn, every token verified in full (no token cache)",
    ),
    "partydeco-history": (
        [PY, "bench/app.py", "--history", "100", "--port", "{port}"],
        "bench/app.py on Hypercorn, rooms keep their last 100 broadcasts (SQLite)",
    ),
    "partydeco-noauth": (
        [PY, "bench/app.py", "--auth", "presence", "--port", "{port}"],
        "bench/app.py on Hypercorn, token presence check only (no JWT)",
    ),
    "starlette-uvicorn": (
        [PY, "bench/refs.py", "starlette", "--server", "uvicorn", "--port", "{port}"],
        "Starlette on Uvicorn",
    ),
    "asgi-uvicorn": (
        [PY, "bench/refs.py", "asgi", "--server", "uvicorn", "--port", "{port}"],
        "bare ASGI app on Uvicorn (uvloop, httptools, websockets sans-I/O)",
    ),
    "partydeco-uvicorn": (
        [PY, "bench/app.py", "--server", "uvicorn", "--key-file", "{keyfile}", "--port", "{port}"],
        "bench/app.py on Uvicorn",
    ),
}
BASELINE = "quart"
#: Extra loadgen arguments per server: a party with history sends envelopes.
LOADGEN_EXTRA: dict[str, list[str]] = {"partydeco-history": ["--history", "1"]}
#: The workloads the history server takes part in (they broadcast).
HISTORY_SCENARIOS = {"fanout50", "fanout500", "rooms"}
#: The checkout each server runs from (with it on PYTHONPATH); this one unless --against.
ROOTS: dict[str, Path] = {}
#: Seconds a server may take to answer HTTP after its start (PartyKit bundles, then starts workerd).
STARTUP: dict[str, float] = {"partykit": 120}

#: name -> loadgen arguments at scale 1; {keyfile} is filled in.
SCENARIOS: dict[str, tuple[list[str], str]] = {
    "fanout50": (
        ["fanout", "--receivers", "50", "--messages", "1000"],
        "fan-out, 50 receivers (deliveries/s)",
    ),
    "fanout500": (
        ["fanout", "--receivers", "500", "--messages", "200", "--warmup", "50"],
        "fan-out, 500 receivers (deliveries/s)",
    ),
    "fanout50z": (
        ["fanout", "--receivers", "50", "--messages", "500", "--size", "2048", "--deflate", "1"],
        "fan-out, 50 receivers, 2 KB messages, permessage-deflate (deliveries/s)",
    ),
    "echo": (
        ["echo", "--clients", "16", "--roundtrips", "500"],
        "echo, 16 clients (round trips/s)",
    ),
    "connect": (
        ["connect", "--connections", "1000", "--concurrency", "16"],
        "connects with one token reused, 16 in flight (connects/s)",
    ),
    "connect-fresh": (
        ["connect", "--connections", "1000", "--concurrency", "16", "--freshkey", "{keyfile}"],
        "connects with a new token each, 16 in flight (connects/s)",
    ),
    "http": (
        ["http", "--requests", "5000", "--concurrency", "16"],
        "HTTP GET with one Bearer token reused (req/s)",
    ),
    "http-fresh": (
        ["http", "--requests", "2000", "--concurrency", "16", "--freshkey", "{keyfile}"],
        "HTTP GET with a new Bearer token each (req/s)",
    ),
    "rooms": (
        ["rooms", "--rooms", "1000", "--perroom", "3", "--messages", "10"],
        "1,000 rooms x 3 clients (deliveries/s)",
    ),
    "counter": (
        ["counter", "--clients", "8", "--roundtrips", "200"],
        "storage get-then-put, 8 clients in one room (counts/s)",
    ),
}
#: Workloads only partydeco's app speaks (the reference servers have no storage).
PARTYDECO_ONLY = {"counter"}
#: server -> {workload: why that server sits it out}; printed when the run starts.
SKIPS: dict[str, dict[str, str]] = {
    "partykit": {
        "fanout50z": "workerd (2024-07-18) answers a permessage-deflate offer without the "
        "extension, so its frames would go uncompressed: not the same workload",
    },
}
SCALED = {"--messages", "--roundtrips", "--connections", "--requests"}

#: (label, scenario, server, reference): the issue's targets, as ratios.
TARGETS = [
    # what metrics cost when on (issue 15), shown when both servers run
    ("metrics on vs off", "*", "partydeco-metrics", "partydeco", 0.9),
    ("fan-out 50 vs bare ASGI on Hypercorn", "fanout50", "partydeco", "asgi-hypercorn", 0.95),
    ("fan-out 500 vs bare ASGI on Hypercorn", "fanout500", "partydeco", "asgi-hypercorn", 0.9),
    ("echo vs bare ASGI on Hypercorn", "echo", "partydeco", "asgi-hypercorn", 0.95),
    (
        "RS256 connects, reused token, vs bare ASGI (no auth)",
        "connect",
        "partydeco",
        "asgi-hypercorn",
        0.9,
    ),
    ("RS256 HTTP, reused token, vs minimal Quart", "http", "partydeco", "quart", 1.5),
    # on Uvicorn (issue 19): every workload both servers run
    ("Uvicorn vs Starlette on Uvicorn", "*", "partydeco-uvicorn", "starlette-uvicorn", 1.0),
    ("Uvicorn vs the PartyKit dev server", "*", "partydeco-uvicorn", "partykit", 1.0),
    ("fan-out 50, history on vs off", "fanout50", "partydeco-history", "partydeco", 0.9),
    ("fan-out 500, history on vs off", "fanout500", "partydeco-history", "partydeco", 0.9),
]


def against(directory: Path) -> str:
    """Register the bench app of the checkout in *directory* as a server; return its name."""
    directory = directory.resolve()
    if not (directory / "bench" / "app.py").is_file():
        sys.exit(f"--against {directory}: no bench/app.py there")
    name = f"partydeco@{directory.name}"
    SERVERS[name] = ([PY, "bench/app.py", "--port", "{port}"], f"bench/app.py of {directory}")
    ROOTS[name] = directory
    return name


def partykit(directory: Path) -> str:
    """Register the PartyKit dev server of the anchor copy in *directory*; return its name.

    *directory* is an ``anchors/partykit`` folder with its ``node_modules`` installed;
    the server is its ``run-fg.sh`` with the app in bench mode (``BENCH_PROTOCOL=1``).
    """
    directory = directory.resolve()
    script = directory / "run-fg.sh"
    if not script.is_file():
        sys.exit(
            f"--partykit {directory}: no run-fg.sh there; give the anchors/partykit folder "
            "of a copy of the shared anchors (see docs/guide/performance.md)"
        )
    if not (directory / "node_modules" / "partykit" / "dist" / "bin.mjs").is_file():
        sys.exit(f"--partykit {directory}: PartyKit is not installed there; run `npm ci` in it")
    SERVERS["partykit"] = (
        ["env", "BENCH_PROTOCOL=1", str(script), "{port}"],
        f"the PartyKit dev server (node, workerd, esbuild) with the app of {directory}",
    )
    return "partykit"


def takes_fresh_tokens(name: str) -> bool:
    """Whether server *name* accepts the tokens the ``-fresh`` workloads sign.

    The reference servers and ``--auth presence`` accept any token; a bench app
    verifies them only when it was given the key they are signed with.
    """
    command = SERVERS[name][0]
    return "bench/app.py" not in command or "presence" in command or "{keyfile}" in command


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running server process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """Stop the server's whole process group: SIGTERM, SIGKILL what is left later."""
        stop_group(self.process)


def write_key(path: Path) -> None:
    """A fresh RSA private key (PEM) for the servers to verify and the load generator to sign."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def fill(args: list[str], **values: object) -> list[str]:
    """*args* with each ``{name}`` replaced by its value."""
    out = []
    for arg in args:
        for name, value in values.items():
            arg = arg.replace("{" + name + "}", str(value))
        out.append(arg)
    return out


def start(name: str, results: Path, pin: str | None) -> Server:
    """Start server *name* on a free port and wait until it answers HTTP.

    The server leads a new process group; with *pin*, it and every process it
    starts may only run on those CPUs.
    """
    port = free_port()
    command = fill(SERVERS[name][0], port=port, keyfile=results / "bench-key.pem")
    if pin and shutil.which("taskset"):
        command = ["taskset", "-c", pin, *command]
    log = results / f"{name}.log"
    root = ROOTS.get(name, ROOT)
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:  # the server has its own copy of the file descriptor
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    timeout = STARTUP.get(name, 30)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stop_group(process)
            raise RuntimeError(f"{name} exited: see {log}")
        if answers_http(port):
            if pin and pinned_to(process.pid) != {frozenset(map(int, pin.split(",")))}:
                print(f"warning: not every process of {name} is pinned to CPU {pin}")
            return Server(name, port, process, log)
        time.sleep(0.1)
    stop_group(process)
    raise RuntimeError(f"{name} did not answer on {port} within {timeout:.0f} s: see {log}")


def loadgen(args: list[str], port: int, pin: str | None, timeout: float = 180) -> dict[str, Any]:
    """Run one loadgen scenario and return its JSON result."""
    command = ["node", str(HERE / "loadgen.mjs"), *args, "--port", str(port)]
    if pin and shutil.which("taskset"):
        command = ["taskset", "-c", pin, *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    try:
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    except (IndexError, json.JSONDecodeError):
        return {"errors": 1, "error_kinds": [f"loadgen failed: {done.stderr[-500:]}"], "rate": 0}


@dataclass
class Cell:
    """One scenario on one server, over the rounds."""

    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def best(self) -> dict[str, Any]:
        return max(self.runs, key=lambda r: r["rate"])


def scaled(args: list[str], scale: float) -> list[str]:
    """The loadgen arguments with the counts multiplied by *scale*."""
    out = list(args)
    for i, arg in enumerate(out[:-1]):
        if arg in SCALED:
            out[i + 1] = str(max(1, round(int(out[i + 1]) * scale)))
    return out


def main() -> None:
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply message/request counts")
    parser.add_argument("--servers", default="quart,asgi-hypercorn,partydeco")
    parser.add_argument("--uvicorn", action="store_true", help="add the Uvicorn servers")
    parser.add_argument(
        "--scenarios", default=",".join(s for s in SCENARIOS if s not in PARTYDECO_ONLY)
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin server/loadgen to CPUs")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between runs")
    parser.add_argument(
        "--against",
        metavar="DIR",
        action="append",
        default=[],
        help="also run bench/app.py of another checkout (e.g. a git worktree of an older "
        "commit), as server partydeco@DIR; the table then compares partydeco with it",
    )
    parser.add_argument(
        "--partykit", metavar="DIR", type=Path,
        help="also run the PartyKit dev server, as server partykit: DIR is an anchors/partykit "
        "folder with node_modules installed (npm ci)",
    )  # fmt: skip
    args = parser.parse_args()
    if not shutil.which("node"):
        sys.exit("bench/run.py needs node (18 or later) on PATH")
    names = args.servers.split(",")
    for other in args.against:
        name = against(Path(other))
        names.append(name)
        TARGETS.append((f"partydeco vs {name}", "*", "partydeco", name, 1.0))
    if args.uvicorn:
        names += [n for n in ("starlette-uvicorn", "partydeco-uvicorn") if n not in names]
    if args.partykit:
        names += [n for n in [partykit(args.partykit)] if n not in names]
    scenarios = args.scenarios.split(",")
    for name in names:
        if name == "partykit" and name not in SERVERS:
            sys.exit("server partykit needs --partykit DIR (an anchors/partykit folder)")
        if name not in SERVERS:
            sys.exit(f"unknown server {name!r}; choose from {', '.join(SERVERS)}")
    for name in scenarios:
        if name not in SCENARIOS:
            sys.exit(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    pin_server, pin_lg = (None, None) if args.no_pin or (os.cpu_count() or 1) < 2 else ("0", "1")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results = HERE / "results" / stamp
    results.mkdir(parents=True, exist_ok=True)
    write_key(results / "bench-key.pem")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    servers: dict[str, Server] = {}
    cells: dict[tuple[str, str], Cell] = {}
    failed = False
    try:
        for name in names:
            servers[name] = start(name, results, pin_server)
        for name, server in servers.items():
            check = loadgen(["check", *LOADGEN_EXTRA.get(name, [])], server.port, pin_lg)
            if check["errors"]:
                print(f"{name} fails the protocol check: {check['error_kinds']}", file=sys.stderr)
                failed = True
        if failed:
            sys.exit(1)
        print(f"servers up: {', '.join(f'{n}:{s.port}' for n, s in servers.items())}")
        for name in names:
            for scenario, why in SKIPS.get(name, {}).items():
                if scenario in scenarios:
                    print(f"{name} skips {scenario}: {why}")
        print(f"{args.rounds} rounds, scale {args.scale}, pinned: {pin_server is not None}\n")
        for round_ in range(args.rounds):
            for scenario in scenarios:
                order = names[round_ % len(names) :] + names[: round_ % len(names)]
                if scenario in PARTYDECO_ONLY:
                    order = [n for n in order if n.startswith("partydeco")]
                if scenario.endswith("-fresh"):
                    order = [n for n in order if takes_fresh_tokens(n)]
                if scenario not in HISTORY_SCENARIOS:
                    order = [n for n in order if n not in LOADGEN_EXTRA]
                order = [n for n in order if scenario not in SKIPS.get(n, {})]
                for name in order:
                    server = servers[name]
                    time.sleep(args.pause)
                    cpu0, t0 = group_cpu_seconds(server.process.pid), time.monotonic()
                    workload = fill(SCENARIOS[scenario][0], keyfile=results / "bench-key.pem")
                    workload = scaled(workload, args.scale) + LOADGEN_EXTRA.get(name, [])
                    result = loadgen(workload, server.port, pin_lg)
                    elapsed = time.monotonic() - t0
                    cpu = group_cpu_seconds(server.process.pid) - cpu0
                    result["server_cpu_avg"] = cpu / elapsed
                    result["round"] = round_
                    result["server"] = name
                    result["name"] = scenario
                    cells.setdefault((scenario, name), Cell()).runs.append(result)
                    with (results / "runs.jsonl").open("a") as out:
                        out.write(json.dumps(result) + "\n")
                    status = "ok" if not result["errors"] else f"ERRORS {result['error_kinds']}"
                    print(
                        f"  round {round_ + 1} {scenario:9} {name:18} {result['rate']:10.0f}/s "
                        f"p50 {fmt_ms(result.get('p50_ms'))} p99 {fmt_ms(result.get('p99_ms'))} "
                        f"lg {result.get('lg_cpu') or 0:.2f} {status}",
                        flush=True,
                    )
                    failed |= bool(result["errors"])
    finally:
        for server in servers.values():
            server.stop()

    table = report(names, scenarios, cells, args.rounds)
    (results / "table.md").write_text(table)
    print("\n" + table)
    print(f"raw results and server logs: {results.relative_to(ROOT)}")
    if failed:
        print("SOME RUNS HAD ERRORS: the numbers above are not valid", file=sys.stderr)
        sys.exit(1)


def fmt_ms(value: float | None) -> str:
    """Milliseconds with two significant decimals, or a dash."""
    return "-" if value is None else f"{value:.2f}ms" if value < 10 else f"{value:.0f}ms"


def ratios(cells: dict[tuple[str, str], Cell], scenario: str, name: str, ref: str) -> list[float]:
    """The per-round ratios *name* / *ref* for *scenario*."""
    mine, theirs = cells.get((scenario, name)), cells.get((scenario, ref))
    if mine is None or theirs is None:
        return []
    by_round = {r["round"]: r["rate"] for r in theirs.runs}
    return [r["rate"] / by_round[r["round"]] for r in mine.runs if by_round.get(r["round"])]


def report(
    names: list[str], scenarios: list[str], cells: dict[tuple[str, str], Cell], rounds: int
) -> str:
    """The Markdown tables: rates and ratios, latencies, targets."""
    lines = [
        f"Ratio to {BASELINE} (best round; per-round range in brackets), {rounds} rounds:",
        "",
        "| workload | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for scenario in scenarios:
        base = cells.get((scenario, BASELINE))
        row = [SCENARIOS[scenario][1]]
        for name in names:
            cell = cells.get((scenario, name))
            if cell is None:
                row.append("-")
                continue
            best = cell.best["rate"]
            if base is None or name == BASELINE:
                row.append(f"{best:,.0f}/s" + (" (1.00)" if name == BASELINE else ""))
                continue
            spread = ratios(cells, scenario, name, BASELINE)
            low, high = (min(spread), max(spread)) if spread else (0, 0)
            row.append(f"{best / base.best['rate']:.2f} [{low:.2f}-{high:.2f}]")
        lines.append("| " + " | ".join(row) + " |")

    def latency(best: dict[str, Any]) -> str:
        return f"{fmt_ms(best.get('p50_ms'))} / {fmt_ms(best.get('p99_ms'))}"

    def rate_and_cpu(best: dict[str, Any]) -> str:
        cpu = f"{best['server_cpu_avg']:.2f}/{best.get('lg_cpu') or 0:.2f}"
        return f"{best['rate']:,.0f}/s ({cpu})"

    for title, show in (
        ("Latency p50 / p99 in the best round (ms):", latency),
        ("Absolute rates (best round) and CPU (server avg over the run / loadgen):", rate_and_cpu),
    ):
        lines += ["", title, ""]
        lines += ["| workload | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for scenario in scenarios:
            row = [scenario]
            for name in names:
                cell = cells.get((scenario, name))
                row.append("-" if cell is None else show(cell.best))
            lines.append("| " + " | ".join(row) + " |")
    if "partydeco" in names and "partydeco-nocache" in names:
        lines += ["", "partydeco with / without its token cache (median of per-round ratios):", ""]
        lines += ["| workload | ratio |", "|---|---|"]
        for scenario in scenarios:
            spread = ratios(cells, scenario, "partydeco", "partydeco-nocache")
            if spread:
                median = statistics.median(spread)
                lines.append(f"| {scenario} | {median:.2f} [{min(spread):.2f}-{max(spread):.2f}] |")
    rows = []
    for label, target, name, ref, goal in TARGETS:
        # "*": the comparison holds for every workload (another checkout of partydeco)
        for scenario in scenarios if target == "*" else [target]:
            spread = ratios(cells, scenario, name, ref)
            if not spread:
                continue
            median = statistics.median(spread)
            verdict = "met" if median >= goal else "NOT met"
            span = f"[{min(spread):.2f}-{max(spread):.2f}]"
            what = f"{label}, {scenario}" if target == "*" else label
            rows.append(f"| {what} | {median:.2f} {span} | >= {goal} | {verdict} |")
    if rows:
        lines += ["", "Targets (median of per-round ratios, range in brackets):", ""]
        lines += ["| target | ratio | goal | |", "|---|---|---|---|", *rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
