"""Helpers shared by the command modules."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import ssl
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Final

from xmlchat.client import trust
from xmlchat.config import Config
from xmlchat.jid import JID, InvalidJID
from xmlchat.server.tls import client_context

PASSWORD_ENV: Final = "XMLCHAT_PASSWORD"
NO_PASSWORD: Final = (
    f"xmlchat: no password: type it at a terminal, pipe it with --password-stdin, or set {PASSWORD_ENV}"
)


def run_async(coro: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coro)


def user_jid(text: str, config: Config) -> JID:
    try:
        jid = JID.user(text, config.domain)
    except InvalidJID as e:
        raise SystemExit(f"xmlchat: {e}") from None
    return jid.bare


def add_password_options(parser: argparse.ArgumentParser) -> None:
    """Where a command takes a password from, besides the prompt."""
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of stdin"
    )
    parser.add_argument(
        "--password", help=f"visible to other users in ps: prefer --password-stdin or {PASSWORD_ENV}"
    )


def read_password(args: argparse.Namespace, prompt: str = "Password: ", confirm: bool = True) -> str:
    """``--password``, else ``--password-stdin``, else ``$XMLCHAT_PASSWORD``,
    else a prompt at the terminal; with none of them, one line of error."""
    if getattr(args, "password", None) is not None:
        return str(args.password)
    if getattr(args, "password_stdin", False):
        line = sys.stdin.readline()
        if not line:
            raise SystemExit("xmlchat: --password-stdin: stdin is empty")
        return line.rstrip("\r\n")
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if not sys.stdin.isatty():
        raise SystemExit(NO_PASSWORD)
    try:
        password = getpass.getpass(prompt)
        if confirm and getpass.getpass("Again: ") != password:
            raise SystemExit("xmlchat: passwords do not match")
    except EOFError:
        raise SystemExit(NO_PASSWORD) from None
    return password


def ask_password(prompt: str = "Password: ", confirm: bool = True) -> str:
    """A password from the terminal only (see :func:`read_password`)."""
    return read_password(argparse.Namespace(), prompt, confirm)


Command = Callable[[argparse.Namespace, Config], int]


def add_client_commands(
    sub: Any,
    common: argparse.ArgumentParser,
    names: tuple[str, str],
    protocol: str,
    commands: tuple[Command, Command],
    options: Callable[[argparse.ArgumentParser], None],
) -> None:
    """The ``chat``/``send`` pair of a protocol's client, with the connection
    options both share plus the protocol's own (added by ``options``)."""
    connect = argparse.ArgumentParser(add_help=False, parents=[common])
    options(connect)
    connect.add_argument("--server", metavar="HOST:PORT", help=f"default: the configured {protocol} listener")
    connect.add_argument("--cafile", help="trust this certificate (default: the data directory's)")
    connect.add_argument(
        "--trust-on-first-use",
        action="store_true",
        help="pin the server's certificate the first time, refuse it if it changes (like ssh)",
    )
    connect.add_argument("--insecure", action="store_true", help="do not verify the certificate")
    add_password_options(connect)
    chat = sub.add_parser(names[0], parents=[connect], help=f"interactive {protocol} chat")
    chat.add_argument("jid")
    chat.set_defaults(run=commands[0])
    send = sub.add_parser(names[1], parents=[connect], help=f"send one message over {protocol}")
    send.add_argument("jid", help="sender")
    send.add_argument("to", help="recipient")
    send.add_argument("text")
    send.set_defaults(run=commands[1])


def client_tls(
    args: argparse.Namespace, config: Config, host: str, port: int, direct: bool
) -> ssl.SSLContext:
    """What the client trusts: ``--insecure`` nothing, ``--cafile``, a pinned
    fingerprint (``--trust-on-first-use``), else the data directory's
    certificate if there is one, else the system's CAs."""
    if args.insecure:
        return client_context(insecure=True)
    if args.cafile:
        return client_context(args.cafile)
    if args.trust_on_first_use:
        if not direct:
            raise SystemExit("xmlchat: --trust-on-first-use needs a direct TLS port (not STARTTLS)")
        try:
            context, said = trust.pinned_context(host, port, trust.known_hosts_path())
        except trust.FingerprintChanged as e:
            raise SystemExit(f"xmlchat: {e}") from None
        except OSError as e:
            raise SystemExit(f"xmlchat: cannot connect to {host}:{port}: {e}") from None
        print(said, file=sys.stderr)
        return context
    generated = config.data_path / "tls" / "cert.pem"
    return client_context(str(generated) if generated.exists() else None)


def connect_failure(error: BaseException, host: str, port: int, config: Config) -> str:
    """One message for a connection that failed; for a certificate that could
    not be verified, what to do about it."""
    local_cert = config.data_path / "tls" / "cert.pem"
    if isinstance(error, ssl.SSLCertVerificationError):
        return "xmlchat: " + trust.explain(error.verify_message or str(error), host, port, local_cert)
    if "CERTIFICATE_VERIFY_FAILED" in str(error):  # slixmpp reports it as a disconnection
        reason = str(error).rpartition("certificate verify failed: ")[2].partition(" (_ssl")[0]
        return "xmlchat: " + trust.explain(reason, host, port, local_cert)
    return f"xmlchat: cannot connect to {host}:{port}: {error or 'timed out'}"
