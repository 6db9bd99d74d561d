"""Where the server's time goes per message: a pyinstrument profile of the
``make bench-instructions`` scenario (the real server in this process, pairs
of raw-socket clients in the same event loop), message phase only.

    make bench-profile            # native and XMPP, into docs/performance/
    PROTOCOL=xmpp python -m benchmarks.profile OUT_DIR

It writes ``profile-PROTOCOL.svg`` (a flame graph: width is time, callers
below callees, frames under 0.5 % left out) and ``profile-PROTOCOL.txt``
(the same call tree as text).
The clients' own work is in the profile too: it is the ``send`` and
``receive`` coroutines of ``benchmarks/instructions.py``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from xml.sax.saxutils import escape

from pyinstrument import Profiler, processors
from pyinstrument.frame import Frame

from benchmarks import instructions

WIDTH, ROW = 1200, 17
MIN_SHARE = 0.005


def flame_svg(root: Frame, title: str) -> str:
    """A flame graph of pyinstrument's call tree: plain SVG, a tooltip per frame."""
    total = root.time or 1.0
    rects: list[str] = []
    depth_max = 0

    def place(frame: Frame, x: float, depth: int) -> None:
        nonlocal depth_max
        width = frame.time / total * WIDTH
        if frame.time / total < MIN_SHARE:
            return
        depth_max = max(depth_max, depth)
        name = f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
        label = escape(name if len(name) * 7 < width else frame.function or "")
        hue = 20 + zlib.crc32((frame.file_path_short or "").encode()) % 40  # stable colours
        rects.append(
            f'<g><title>{escape(name)}: {frame.time / total:.1%}</title>'
            f'<rect x="{x:.1f}" y="{{y{depth}}}" width="{width:.1f}" height="{ROW - 1}" '
            f'fill="hsl({hue},80%,60%)"/>'
            + (f'<text x="{x + 3:.1f}" y="{{t{depth}}}">{label[: int(width / 7)]}</text>' * (width > 30))
            + "</g>"
        )
        child_x = x
        for child in frame.children:
            place(child, child_x, depth + 1)
            child_x += child.time / total * WIDTH

    place(root, 0.0, 0)
    height = (depth_max + 3) * ROW
    body = "\n".join(rects)
    for depth in range(depth_max + 1):
        y = height - (depth + 1) * ROW
        body = body.replace(f"{{y{depth}}}", str(y)).replace(f"{{t{depth}}}", str(y + ROW - 5))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="monospace" font-size="11">'
        f'<text x="4" y="14" font-size="13">{escape(title)} (width: share of time; hover for names)</text>'
        f"\n{body}\n</svg>\n"
    )


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
    session = profiler.last_session
    assert session is not None
    root = session.root_frame()
    assert root is not None
    # Merge the event loop's many turns into one tree, as the text view does.
    for process in (processors.aggregate_repeated_calls, processors.merge_consecutive_self_time):
        root = process(root, {})
        assert root is not None
    (out / f"profile-{protocol}.svg").write_text(flame_svg(root, f"xmlchat {protocol}: {messages} messages"))
    text = profiler.output_text(unicode=True, color=False, show_all=False, short_mode=False)
    # Paths relative to the checkout: the committed profile names no machine.
    text = text.replace(f"{Path(__file__).resolve().parent.parent}/", "")
    (out / f"profile-{protocol}.txt").write_text(text)


if __name__ == "__main__":
    main()
