"""The measurements: one function per scenario, each returning plain records.

Every scenario runs the same steps over each protocol variant, through the
project's two clients (:mod:`xmlchat.compare.clients`). They live by what
they read:

    targets.py  the protocol variants and the servers that offer them
    wire.py     bytes and round trips through the counting proxy: connect,
                bytes per message, reconnect, a recorded conversation
    timing.py   latency, throughput and server CPU, connected directly
    records.py  the records they return, and the statistics that fill them

This module gathers their public names, so ``scenarios.connect`` and
``from xmlchat.compare.scenarios import MessageResult`` keep working.
"""

from xmlchat.compare.records import (
    ConnectResult,
    LatencyResult,
    MessageResult,
    ReconnectResult,
    ThroughputResult,
    Transcript,
    median_int,
    percentile,
)
from xmlchat.compare.targets import TIMEOUT, VARIANTS, Target, Variant, bind_targets, close_all, users_for
from xmlchat.compare.timing import latency, stamp_body, stamp_of, throughput
from xmlchat.compare.wire import (
    CHINESE,
    QUIET,
    ascii_body,
    bodies,
    chinese_body,
    connect,
    conversation,
    message_bytes,
    quiet,
    reconnect,
)

__all__ = [
    "CHINESE",
    "QUIET",
    "TIMEOUT",
    "VARIANTS",
    "ConnectResult",
    "LatencyResult",
    "MessageResult",
    "ReconnectResult",
    "Target",
    "ThroughputResult",
    "Transcript",
    "Variant",
    "ascii_body",
    "bind_targets",
    "bodies",
    "chinese_body",
    "close_all",
    "connect",
    "conversation",
    "latency",
    "median_int",
    "message_bytes",
    "percentile",
    "quiet",
    "reconnect",
    "stamp_body",
    "stamp_of",
    "throughput",
    "users_for",
]
