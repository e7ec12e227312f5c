"""A control-frame flooder, run as a separate process by the inbound tests:
``python tests/support/ping_flooder.py HOST:PORT ping|pong`` opens a socket to
``/parties/main/flood``, prints ``open``, then sends pings (or unsolicited pongs) as fast
as it can until the server closes the socket or 8 s pass. It prints one JSON line:
``{"close": code or null, "sent": frames}``."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.rawws import PING, PONG, RawSocket, frame


async def main() -> None:
    base, kind = sys.argv[1], sys.argv[2]
    ws = await RawSocket.open(base, "/parties/main/flood")
    print("open", flush=True)
    batch = b"".join(frame(PING if kind == "ping" else PONG, b"x") for _ in range(1000))
    sent = 0
    closing = asyncio.ensure_future(ws.close_code(timeout=8))
    try:
        while not closing.done():
            ws.writer.write(batch)
            await ws.writer.drain()
            sent += 1000
    except ConnectionError:
        pass
    code = await closing
    print(json.dumps({"close": code, "sent": sent}), flush=True)
    ws.close()


if __name__ == "__main__":
    asyncio.run(main())
