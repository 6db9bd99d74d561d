"""How long a client waits before its next reconnection attempt."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, min_backoff: float, max_backoff: float) -> float:
    """Exponential backoff with full jitter (AWS architecture blog's "full
    jitter"): attempt 0 waits up to ``min_backoff``, each later one up to twice
    as long, capped at ``max_backoff``, so a restarted server is not stampeded."""
    return random.uniform(0, min(max_backoff, min_backoff * 2**attempt))
