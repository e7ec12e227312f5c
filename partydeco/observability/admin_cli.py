"""``partydeco rooms``: the admin API from a terminal.

``partydeco rooms`` lists the rooms of a running server (of every process, with
Redis) and the totals per party; ``partydeco rooms chat`` those of one party;
``partydeco rooms chat lobby`` the connections of one room; ``--mint chat`` prints
the token that sees party ``chat`` only. The server is ``--url`` (else
``$PARTYDECO_ADMIN_URL``, else ``http://127.0.0.1:1999``) and the token
``--token`` (else ``$PARTYDECO_ADMIN_TOKEN``).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any
from urllib.parse import quote

import httpx

from .admin import party_token
from .settings import ADMIN_PATH

__all__ = ["add_parser", "run"]

DEFAULT_URL = "http://127.0.0.1:1999"


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``rooms`` command to the CLI's subcommands."""
    cmd: argparse.ArgumentParser = commands.add_parser(
        "rooms", help="list a running server's rooms and connections (the admin API)"
    )
    cmd.add_argument("party", nargs="?", help="only this party's rooms")
    cmd.add_argument("room", nargs="?", help="this room's connections")
    cmd.add_argument("--url", help=f"the server ($PARTYDECO_ADMIN_URL, else {DEFAULT_URL})")
    cmd.add_argument("--token", help="the admin or party token ($PARTYDECO_ADMIN_TOKEN)")
    cmd.add_argument("--limit", type=int, default=100, help="rooms or connections shown (100)")
    cmd.add_argument("--json", action="store_true", help="print the API's JSON answer")
    cmd.add_argument("--mint", metavar="PARTY", help="print the token that sees PARTY only")
    return cmd


def run(args: argparse.Namespace) -> None:
    """Run ``partydeco rooms`` with parsed *args*.

    Raises:
        SystemExit: no token, the server refused, or it cannot be reached.
    """
    token = args.token or os.environ.get("PARTYDECO_ADMIN_TOKEN")
    if not token:
        raise SystemExit("partydeco rooms: give --token or set PARTYDECO_ADMIN_TOKEN")
    if args.mint:
        try:
            print(party_token(token, args.mint))
        except ValueError as exc:
            raise SystemExit(f"partydeco rooms: {exc}") from None
        return
    base = (args.url or os.environ.get("PARTYDECO_ADMIN_URL") or DEFAULT_URL).rstrip("/")
    if args.room:
        url = f"{base}{ADMIN_PATH}/rooms/{quote(args.party, safe='')}/{args.room}"
        params: dict[str, Any] = {"limit": args.limit}
    else:
        url = f"{base}{ADMIN_PATH}/rooms"
        params = {"limit": args.limit, **({"party": args.party} if args.party else {})}
    try:
        response = httpx.get(
            url, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
    except httpx.HTTPError as exc:
        raise SystemExit(f"partydeco rooms: cannot reach {base}: {exc}") from None
    if response.status_code != 200:
        text = response.text.strip()[:200]
        raise SystemExit(f"partydeco rooms: {response.status_code} {text}")
    answer = response.json()
    if args.json:
        print(json.dumps(answer, indent=2))
    elif args.room:
        print(format_room(answer))
    else:
        print(format_listing(answer))


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def format_listing(answer: dict[str, Any]) -> str:
    """A listing as text: totals per party, then the rooms."""
    parties = [["party", "rooms", "connections"]] + [
        [name, str(t["rooms"]), str(t["connections"])] for name, t in answer["parties"].items()
    ]
    lines = [_table(parties), ""]
    if answer["rooms"]:
        rooms = [["party", "room", "connections"]] + [
            [r["party"], r["room"], str(r["connections"])] for r in answer["rooms"]
        ]
        lines.append(_table(rooms))
    else:
        lines.append("no rooms loaded")
    note = f"{answer['processes']} process(es) answered"
    if answer.get("unreachable"):
        note += f", {answer['unreachable']} did not"
    if answer.get("truncated"):
        note += "; more rooms than shown (--limit)"
    lines.append(note)
    return "\n".join(lines)


def format_room(answer: dict[str, Any]) -> str:
    """A room's connections as text."""
    head = f"{answer['party']}/{answer['room']}: {answer['count']} connection(s)"
    if not answer["connections"]:
        return head
    rows = [["id", "principal", "tags"]] + [
        [c["id"], c["principal"] or "-", ", ".join(c["tags"])] for c in answer["connections"]
    ]
    tail = "\n(more connections than shown: --limit)" if answer.get("truncated") else ""
    return f"{head}\n{_table(rows)}{tail}"
