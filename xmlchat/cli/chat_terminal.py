"""The terminal side of the chat commands: reading lines and showing output.

On a terminal with ``prompt_toolkit`` installed (``pip install 'xmlchat[chat]'``)
lines are read in raw mode: line editing, history, bracketed paste, no length
cap, and what arrives is printed above the prompt. Otherwise plain lines are
read from stdin by a daemon thread, so quitting never waits for a keypress.
Either way Ctrl-C and Ctrl-D (end of input) quit.

A terminal in canonical mode cuts a line at 4095 bytes (Linux's N_TTY line
buffer); only the raw-mode reader gets a longer paste whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Protocol

# Linux's canonical-mode line buffer (N_TTY_BUF_SIZE 4096, less the newline).
CANONICAL_LINE_MAX = 4095


class LineReader(Protocol):
    async def read(self) -> str | None:
        """The next line without its newline; None when the user quits."""
        ...

    def session(self) -> contextlib.AbstractContextManager[None]:
        """Held while the chat runs: output printed meanwhile stays readable."""
        ...


class Terminal:
    """Where the chat shows things, and how a connection problem ends it."""

    def __init__(self, reader: LineReader | None = None) -> None:
        self.reader = reader or choose_reader()
        self.ended = asyncio.Event()
        self.exit_code = 0
        self.end_reason = ""

    def show(self, line: str) -> None:
        print(line, flush=True)

    def error(self, line: str) -> None:
        """Why the chat could not start or had to end: on stderr."""
        print(line, file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Ctrl-C (SIGINT) ends the chat cleanly, whatever it is doing; in raw
        mode the prompt reads it as a key instead."""
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, self.ended.set)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no signals
            yield
            return
        try:
            yield
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    def end(self, code: int, why: str) -> None:
        """Stop the chat from outside the input loop (a refused re-login);
        ``why`` is shown once the prompt is gone."""
        self.exit_code, self.end_reason = code, why
        self.ended.set()


def choose_reader() -> LineReader:
    if sys.stdin.isatty():
        try:
            return PromptReader()
        except ImportError:
            pass
    return PlainReader()


class PromptReader:
    def __init__(self) -> None:
        from prompt_toolkit import PromptSession

        self._prompt: PromptSession[str] = PromptSession()

    async def read(self) -> str | None:
        try:
            # Not prompt_toolkit's loop exception handler: it prints the error of
            # any background task (slixmpp's, while a restarted server drops the
            # stream) and then waits for Enter, stalling the chat.
            return await self._prompt.prompt_async("> ", set_exception_handler=False)
        except (KeyboardInterrupt, EOFError):
            return None

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        from prompt_toolkit.patch_stdout import patch_stdout

        # Raw for the whole chat, not only while a prompt is shown: keys typed
        # while a command runs wait for the next prompt as keys (a Ctrl-D stays
        # a Ctrl-D instead of the line discipline's end-of-file).
        with patch_stdout(raw=True), self._prompt.input.raw_mode():
            yield


class PlainReader:
    def __init__(self) -> None:
        self._lines: asyncio.Queue[str | None] | None = None

    def _start(self) -> asyncio.Queue[str | None]:
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()

        def hand_over(line: str | None) -> bool:
            try:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            except RuntimeError:  # the chat ended and closed its loop: nobody reads
                return False
            return True

        def read() -> None:
            for line in sys.stdin:
                if not hand_over(line.rstrip("\n")):
                    return
            hand_over(None)

        # A daemon thread: blocked in read(), it never holds up the exit.
        threading.Thread(target=read, name="stdin", daemon=True).start()
        return lines

    async def read(self) -> str | None:
        if self._lines is None:
            self._lines = self._start()
        line = await self._lines.get()
        if line is not None and sys.stdin.isatty() and len(line.encode()) >= CANONICAL_LINE_MAX - 1:
            print(
                f"! the terminal may have cut this line at {CANONICAL_LINE_MAX} bytes; "
                "install prompt_toolkit (xmlchat[chat]) for longer lines",
                flush=True,
            )
        return line

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        yield
