"""Summarise a py-spy collapsed-stack file: where the server's time goes.

Usage: python bench/profile_summary.py PROFILE.txt [TOP]
(record one with ``py-spy record --format raw -o PROFILE.txt --pid PID``).
Prints the share of samples by package (the innermost frame decides) and the
functions with the most samples, inclusive (anywhere on the stack) and self.
"""

from __future__ import annotations

import re
import sys
from collections import Counter


def package(frame: str) -> str:
    """The package a ``function (path:line)`` frame belongs to."""
    match = re.search(r"\((.*?):\d+\)", frame)
    path = match.group(1) if match else frame
    for marker in ("site-packages/", "lib/python3.11/", "/partydeco/", "/bench/"):
        if marker in path:
            rest = path.split(marker, 1)[1]
            name = rest.split("/", 1)[0].removesuffix(".py")
            return (
                "partydeco" if marker == "/partydeco/" else name if marker != "/bench/" else "bench"
            )
    return path


def main() -> None:
    """Print the summary."""
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    by_package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    with open(sys.argv[1]) as lines:
        for line in lines:
            stack, _, count = line.rstrip().rpartition(" ")
            n = int(count)
            frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
            frames = [f for f in frames if not f.startswith("thread ")]
            if not frames:
                continue
            total += n
            by_package[package(frames[-1])] += n
            own[re.sub(r":\d+\)", ")", frames[-1])] += n
            for name in {re.sub(r":\d+\)", ")", f) for f in frames}:
                inclusive[name] += n
    print(f"{total} samples")
    print("\nself time by package:")
    for name, n in by_package.most_common(12):
        print(f"  {100 * n / total:5.1f}%  {name}")
    print("\ninclusive:")
    for name, n in inclusive.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {name}")
    print("\nself:")
    for name, n in own.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
