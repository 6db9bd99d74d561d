"""What the native core's tests share: the stream's opening, a logged-in core,
and cutting bytes into chunks wherever hypothesis says."""

from __future__ import annotations

from xmlchat.protocol import native
from xmlchat.protocol.native import NativeServerStream
from xmlchat.xml.stream import StreamLimits

OPEN = b"<session xmlns='urn:xmlchat:native:1' version='1'>"
LOGIN = b"<login><user>alice</user><password>pw</password><resource>r1</resource></login>"


def new_core() -> NativeServerStream:
    return NativeServerStream("localhost", StreamLimits(), 10_000)


def logged_in(login: bytes = LOGIN) -> NativeServerStream:
    """A core past ``<login-ok>``, its output so far read."""
    core = new_core()
    events = core.receive_data(OPEN + login)
    assert isinstance(events[-1], native.LoginRequested)
    assert core.logged_in("alice@localhost/r1") == []
    core.data_to_send()
    return core


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at each position in ``cuts`` (taken modulo its length + 1)."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def events_after_login(chunks: list[bytes]) -> list[native.Event]:
    """What a logged-in core makes of ``chunks``, fed one after the other."""
    core = logged_in()
    return [event for chunk in chunks for event in core.receive_data(chunk)]
