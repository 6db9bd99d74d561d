"""Where the server's time goes per message: a pyinstrument profile of the
``make bench-instructions`` scenario (the real server in this process, pairs
of raw-socket clients in the same event loop), message phase only.

    make bench-profile            # native and XMPP, into docs/performance/
    PROTOCOL=xmpp python -m benchmarks.profile OUT_DIR

It writes ``profile-PROTOCOL.html`` (pyinstrument's interactive call tree)
and ``profile-PROTOCOL.txt`` (the same tree as text, calls under 1 % hidden).
The clients' own work is in the profile too: it is the ``send`` and
``receive`` coroutines of ``benchmarks/instructions.py``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyinstrument import Profiler

from benchmarks import instructions


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bench-out")
    out.mkdir(parents=True, exist_ok=True)
    protocol = os.environ.get("PROTOCOL", "native")
    profiler = Profiler(interval=0.0005, async_mode="disabled")

    @contextmanager
    def measure() -> Iterator[None]:
        profiler.start()
        try:
            yield
        finally:
            profiler.stop()

    cpu = asyncio.run(instructions._run(measure))
    messages = instructions.PAIRS * instructions.PER_PAIR
    print(f"{protocol}: {messages} messages, {cpu / messages * 1e6:.1f} µs CPU each (clients included)")
    (out / f"profile-{protocol}.html").write_text(profiler.output_html())
    text = profiler.output_text(unicode=True, color=False, show_all=False, short_mode=False)
    (out / f"profile-{protocol}.txt").write_text(text)


if __name__ == "__main__":
    main()
