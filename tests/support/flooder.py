"""A flooding client, run as a separate process by the security tests:
``python tests/support/flooder.py URL SECONDS`` sends small text frames as fast as it can
for SECONDS (or until the server closes). It prints ``open`` once connected and
``sent 1000`` after its thousandth frame."""

from __future__ import annotations

import sys
import time

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect


def main() -> None:
    url, seconds = sys.argv[1], float(sys.argv[2])
    sent = 0
    with connect(url, compression=None) as ws:
        print("open", flush=True)
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                ws.send("flood " + "x" * 200)
                sent += 1
                if sent == 1000:
                    print("sent 1000", flush=True)
        except ConnectionClosed:
            pass


if __name__ == "__main__":
    main()
