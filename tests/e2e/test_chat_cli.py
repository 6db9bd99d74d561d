"""``xmlchat chat`` and ``xmlchat xmpp-chat`` as a user meets them (issue 15):
the real commands in a pseudo-terminal against the real server, each test run
for both protocols."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pexpect
import pytest
from conftest import ServerFactory, ServerProcess
from e2e.chat_terminal import CHAT_COMMANDS, chat_argv, chat_env, paste, quit_chat, received, spawn_chat
from faults.peers import pin_ports

from xmlchat.cli.chat_shell import HELP

# 20,000-byte stanzas: a part carries 17,952 bytes of body, so the splitting shows
# with pastes of tens of kilobytes rather than megabytes through a terminal.
SMALL_STANZAS = "[limits]\nmax_stanza_bytes = 20000\n[archive]\nenabled = true\n"


@pytest.fixture
def chat_server(server_factory: ServerFactory) -> ServerProcess:
    return server_factory(SMALL_STANZAS, users={n: f"{n}pw" for n in ("alice", "bob", "carol")})


@pytest.mark.parametrize("command", CHAT_COMMANDS)
def test_lines_are_sent_as_typed(chat_server: ServerProcess, command: str) -> None:
    chat = spawn_chat(chat_server, command, "alice")
    chat.sendline("bob: are you there?")  # no conversation yet: a colon names nobody
    chat.expect_exact("! whom to? /to NAME first, or /msg NAME TEXT")
    chat.sendline("/to bob")
    chat.expect_exact("~ talking to bob")
    chat.sendline("note: a colon is just text")
    chat.sendline("/msg bob one-off")
    chat.sendline("//slash first")
    chat.sendline("/nonsense")
    chat.expect_exact("! unknown command /nonsense; /help lists them")
    assert quit_chat(chat, "d") == 0
    assert received(chat_server, "bob", 3) == ["note: a colon is just text", "one-off", "/slash first"]


@pytest.mark.parametrize("command", CHAT_COMMANDS)
def test_long_pastes_arrive_whole_split_or_refused(chat_server: ServerProcess, command: str) -> None:
    chat = spawn_chat(chat_server, command, "alice")
    chat.sendline("/to bob")
    chat.expect_exact("~ talking to bob")
    # A terminal's canonical mode would cut this at 4095 bytes; the chat reads raw.
    ten_thousand = "".join(f"{n:>9}," for n in range(1000))
    paste(chat, ten_thousand)
    forty_thousand = "w" * 40_000
    paste(chat, forty_thousand)
    chat.expect_exact("~ long message: sending it as 3 messages")
    paste(chat, "z" * 200_000)  # more than 8 parts: refused, and the session goes on
    chat.expect(r"! not sent: 195 KiB is more than 8 messages of 18 KiB")
    chat.sendline("still here")
    assert quit_chat(chat) == 0
    bodies = received(chat_server, "bob", 5)
    assert bodies[0] == ten_thousand
    assert "".join(bodies[1:4]) == forty_thousand
    assert bodies[4] == "still here"


@pytest.mark.parametrize("command", CHAT_COMMANDS)
def test_history_shows_the_newest_messages_oldest_first(chat_server: ServerProcess, command: str) -> None:
    chat = spawn_chat(chat_server, command, "alice")
    chat.sendline("/to bob")
    for n in range(1, 4):
        chat.sendline(f"number {n}")
    chat.sendline("/msg carol to carol")
    assert received(chat_server, "bob", 3) == ["number 1", "number 2", "number 3"]
    chat.sendline("/history bob 2")
    line = r"\[[\d:\- ]+\] alice@localhost -> bob@localhost: number"
    chat.expect(rf"{line} 2\s+{line} 3")
    chat.sendline("/history 1")
    chat.expect_exact("alice@localhost -> carol@localhost: to carol")
    assert quit_chat(chat) == 0


@pytest.mark.parametrize("command", CHAT_COMMANDS)
def test_ctrl_c_quits_at_once(chat_server: ServerProcess, command: str) -> None:
    chat = spawn_chat(chat_server, command, "alice", timeout=10)
    chat.sendline("/who")
    chat.expect_exact("(no contacts yet)")
    assert quit_chat(chat, "c") == 0


@pytest.mark.parametrize("command", CHAT_COMMANDS)
def test_sigint_ends_a_chat_reading_a_pipe(chat_server: ServerProcess, command: str) -> None:
    """Without a terminal (no raw mode) Ctrl-C is SIGINT: still a clean exit,
    even while the reading thread waits for input that never comes."""
    proc = subprocess.Popen(
        [sys.executable, *chat_argv(chat_server, command, "alice")],
        env=chat_env(chat_server), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("logged in as alice@localhost/")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, out + err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", CHAT_COMMANDS)
def test_a_refused_login_is_one_line_on_stderr(chat_server: ServerProcess, command: str) -> None:
    argv = chat_argv(chat_server, command, "alice")
    argv[argv.index("alicepw")] = "wrong"
    result = subprocess.run(
        [sys.executable, *argv], env=chat_env(chat_server), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("xmlchat: login failed: not-authorized"), result.stderr


def test_both_clients_offer_the_same_commands(chat_server: ServerProcess) -> None:
    shown = {}
    for command in CHAT_COMMANDS:
        chat = spawn_chat(chat_server, command, "alice")
        chat.sendline("/help")
        chat.expect(r"(native|xmpp) only: ([^\r\n]*)")
        shown[command] = chat.before.replace("\r\n", "\n")
        quit_chat(chat)
    for command, text in shown.items():
        assert HELP in text, command


@pytest.mark.parametrize("command", CHAT_COMMANDS)
def test_reconnects_when_the_server_restarts(chat_server: ServerProcess, command: str) -> None:
    pin_ports(chat_server)
    chat = spawn_chat(chat_server, command, "alice", timeout=30)
    chat_server.restart()
    chat.expect(r"~ disconnected: [^\r\n]*")
    chat.expect(r"~ reconnected as alice@localhost/\S+")
    chat.sendline("/msg bob after the restart")
    chat.sendline("/who")  # answered only once the message before it was handled
    chat.expect_exact("(no contacts yet)")
    assert quit_chat(chat) == 0
    assert received(chat_server, "bob", 1) == ["after the restart"]


def test_a_refused_relogin_ends_the_chat(chat_server: ServerProcess) -> None:
    pin_ports(chat_server)
    chat = spawn_chat(chat_server, "chat", "alice", timeout=30)
    chat_server.stop()
    chat_server.cli("passwd", "alice", "--password", "changed")
    chat_server.start()
    chat.expect(r"! cannot log in again: login refused: not-authorized")
    chat.expect(pexpect.EOF)
    chat.close()
    assert chat.exitstatus == 1


def test_subscription_requests_are_asked_about(chat_server: ServerProcess) -> None:
    alice = spawn_chat(chat_server, "xmpp-chat", "alice")
    bob = spawn_chat(chat_server, "xmpp-chat", "bob")
    bob.sendline("/add alice")
    alice.expect_exact("? bob@localhost asks to see your presence: /allow bob or /deny bob")
    alice.sendline("/roster")  # nothing approved behind alice's back
    alice.expect_exact("(empty roster: /add NAME)")
    alice.sendline("/allow bob")
    alice.expect_exact("bob@localhost may see your presence now")
    bob.expect(r"\* alice@localhost/\S+ is online")
    # alice asked back when she allowed: now bob is asked, and allows too.
    bob.expect_exact("? alice@localhost asks to see your presence: /allow alice or /deny alice")
    bob.sendline("/allow alice")
    alice.expect(r"\* bob@localhost/\S+ is online")
    alice.sendline("/roster")
    alice.expect(re.escape("bob@localhost online (subscription both)"))
    carol = spawn_chat(chat_server, "xmpp-chat", "carol")
    carol.sendline("/add alice")
    alice.expect_exact("? carol@localhost asks to see your presence: /allow carol or /deny carol")
    alice.sendline("/deny carol")
    alice.expect_exact("refused carol@localhost")
    carol.sendline("/roster")
    carol.expect(re.escape("alice@localhost offline (subscription none)"))
    for chat in (alice, bob, carol):
        assert quit_chat(chat) == 0


@pytest.mark.parametrize("command", CHAT_COMMANDS)
def test_a_room_is_shared_by_both_chats(chat_server: ServerProcess, command: str) -> None:
    """alice uses ``command``; bob the other chat: one room, both protocols."""
    other = next(c for c in CHAT_COMMANDS if c != command)
    alice = spawn_chat(chat_server, command, "alice")
    bob = spawn_chat(chat_server, other, "bob")
    alice.sendline("/join lobby")
    alice.expect_exact("~ you are in lobby@conference.localhost as alice; your lines go to lobby now")
    bob.sendline("/join lobby Bobby")
    bob.expect_exact("as Bobby; your lines go to lobby now")
    bob.sendline("hello room: plain text")
    alice.expect_exact("#lobby@conference.localhost Bobby: hello room: plain text")
    alice.sendline("/who lobby")
    alice.expect_exact("  in lobby: Bobby, alice")
    alice.sendline("and back")
    bob.expect_exact("#lobby@conference.localhost alice: and back")
    alice.sendline("/leave")
    alice.expect_exact("~ left lobby")
    assert quit_chat(alice, "d") == 0 and quit_chat(bob, "d") == 0
