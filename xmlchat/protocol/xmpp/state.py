"""The c2s state machine as data: every transition is in :data:`TRANSITIONS`."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, auto
from typing import Final

# ---------------------------------------------------------------------------
# The state machine, as data (h11 _state.py: "everything that affects the
# state machine must live here").


class State(Enum):
    CONNECTED = auto()  # waiting for the client's stream header (first, or after TLS)
    NEGOTIATING = auto()  # header answered, not authenticated: <starttls/>, <auth/>
    TLS_PENDING = auto()  # <proceed/> queued; waiting for tls_started()
    AUTHENTICATING = auto()  # a SASL exchange is running
    AUTHENTICATED = auto()  # <success/> queued; waiting for the restarted stream's header
    UNBOUND = auto()  # authenticated stream open; bind (and legacy session) only
    BINDING = auto()  # BindRequest or ResumeRequested out; waiting for the server's answer
    BOUND = auto()  # stanzas flow
    CLOSING = auto()  # we sent </stream:stream>; waiting for the peer's
    CLOSED = auto()  # done: write what is queued, close the connection


class _Input(Enum):
    STREAM_OPENED = auto()
    STARTTLS = auto()
    TLS_STARTED = auto()
    SASL_STARTED = auto()
    SASL_FAILED = auto()
    SASL_SUCCEEDED = auto()
    BIND_REQUESTED = auto()
    BIND_SUCCEEDED = auto()
    BIND_FAILED = auto()
    RESUME_REQUESTED = auto()  # XEP-0198 §5: instead of bind
    RESUMED = auto()
    RESUME_FAILED = auto()
    CLOSE_SENT = auto()
    FINISHED = auto()


_OPEN_STATES: Final = (
    State.CONNECTED,
    State.NEGOTIATING,
    State.TLS_PENDING,
    State.AUTHENTICATING,
    State.AUTHENTICATED,
    State.UNBOUND,
    State.BINDING,
    State.BOUND,
)

TRANSITIONS: Final[Mapping[tuple[State, _Input], State]] = {
    (State.CONNECTED, _Input.STREAM_OPENED): State.NEGOTIATING,
    (State.NEGOTIATING, _Input.STARTTLS): State.TLS_PENDING,
    (State.TLS_PENDING, _Input.TLS_STARTED): State.CONNECTED,  # §5.4.3.3: new stream
    (State.NEGOTIATING, _Input.SASL_STARTED): State.AUTHENTICATING,
    (State.NEGOTIATING, _Input.SASL_FAILED): State.NEGOTIATING,  # refused <auth/>
    (State.AUTHENTICATING, _Input.SASL_FAILED): State.NEGOTIATING,  # §6.4.5: may retry
    (State.AUTHENTICATING, _Input.SASL_SUCCEEDED): State.AUTHENTICATED,  # §6.4.6: restart
    (State.AUTHENTICATED, _Input.STREAM_OPENED): State.UNBOUND,
    (State.UNBOUND, _Input.BIND_REQUESTED): State.BINDING,
    (State.BINDING, _Input.BIND_SUCCEEDED): State.BOUND,
    (State.BINDING, _Input.BIND_FAILED): State.UNBOUND,
    (State.UNBOUND, _Input.RESUME_REQUESTED): State.BINDING,
    (State.BINDING, _Input.RESUMED): State.BOUND,
    (State.BINDING, _Input.RESUME_FAILED): State.UNBOUND,
    **{(s, _Input.CLOSE_SENT): State.CLOSING for s in _OPEN_STATES},
    **{(s, _Input.FINISHED): State.CLOSED for s in (*_OPEN_STATES, State.CLOSING)},
}

# States whose input is parsed one '>' at a time, so the core knows exactly
# which bytes followed a restart trigger or a request to the server.
_STEPWISE: Final = frozenset(
    {State.CONNECTED, State.NEGOTIATING, State.AUTHENTICATING, State.AUTHENTICATED, State.UNBOUND}
)


class _Await(Enum):
    CREDENTIALS = auto()
    PASSWORD = auto()
