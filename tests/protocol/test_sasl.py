"""Server SASL mechanisms (xmlchat.protocol.sasl) against scramp's client side."""

from __future__ import annotations

import base64

import pytest
import scramp

from xmlchat.protocol import sasl
from xmlchat.protocol.sasl import (
    Challenge,
    CredentialsNeeded,
    PasswordCheckNeeded,
    SaslCondition,
    SaslFailure,
    Scram,
    Success,
)
from xmlchat.storage import ScramCredentials

# The salt and iteration count Prosody used in the transcripts (tests/protocol/transcripts).
TRANSCRIPT_SALT = base64.b64decode("OWJhMWE1ZGItOGJhMC00MTlkLThkYTctYmZhZTI1MzVhMzkz")


def credentials(mechanism: str, password: str = "alicepw", iterations: int = 4096) -> ScramCredentials:
    salt, stored_key, server_key, i = scramp.ScramMechanism(mechanism).make_auth_info(
        password, iteration_count=iterations, salt=TRANSCRIPT_SALT
    )
    return ScramCredentials(mechanism, salt, i, stored_key, server_key)


def run_scram(
    mechanism: str,
    server: sasl.ServerMechanism,
    creds: ScramCredentials | None,
    password: str = "alicepw",
    channel_binding: tuple[str, bytes] | None = None,
) -> tuple[scramp.ScramClient, sasl.Step]:
    client = scramp.ScramClient([mechanism], "alice", password, channel_binding=channel_binding)
    step = server.start(client.get_client_first().encode())
    assert step == CredentialsNeeded("alice", None, mechanism.removesuffix("-PLUS"))
    challenge = server.provide_credentials(creds)
    assert isinstance(challenge, Challenge)
    client.set_server_first(challenge.data.decode())
    return client, server.respond(client.get_client_final().encode())


# -- PLAIN (RFC 4616) ---------------------------------------------------------------


def test_plain_initial_response() -> None:
    plain = sasl.Plain()
    step = plain.start(b"alice@localhost\0alice\0alicepw")  # xmpppy's, from the transcript
    assert step == PasswordCheckNeeded("alice", "alice@localhost", "alicepw")
    assert "alicepw" not in repr(step)
    assert plain.password_checked(True) == Success(None)


def test_plain_without_initial_response_gets_an_empty_challenge() -> None:
    plain = sasl.Plain()
    assert plain.start(None) == Challenge(b"")
    assert plain.respond(b"\0alice\0secret") == PasswordCheckNeeded("alice", None, "secret")


def test_plain_wrong_password() -> None:
    plain = sasl.Plain()
    plain.start(b"\0alice\0nope")
    with pytest.raises(SaslFailure) as info:
        plain.password_checked(False)
    assert info.value.condition is SaslCondition.NOT_AUTHORIZED


@pytest.mark.parametrize(
    "message",
    [b"alice\0pw", b"\0\0pw", b"\0alice\0", b"\0al\xffice\0pw", b"a\0b\0c\0d", b"\0" + b"a" * 256 + b"\0pw"],
)
def test_plain_malformed(message: bytes) -> None:
    with pytest.raises(SaslFailure) as info:
        sasl.Plain().start(message)
    assert info.value.condition is SaslCondition.MALFORMED_REQUEST


def test_plain_password_check_out_of_turn() -> None:
    with pytest.raises(SaslFailure):
        sasl.Plain().password_checked(True)


# -- SCRAM (RFC 5802, RFC 7677) ---------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_scram_success(mechanism: str) -> None:
    client, step = run_scram(mechanism, Scram(mechanism), credentials(mechanism))
    assert isinstance(step, Success) and step.data is not None
    client.set_server_final(step.data.decode())  # raises unless the server proved itself


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_scram_wrong_password(mechanism: str) -> None:
    with pytest.raises(SaslFailure) as info:
        run_scram(mechanism, Scram(mechanism), credentials(mechanism), password="wrong")
    assert info.value.condition is SaslCondition.NOT_AUTHORIZED


def test_scram_unknown_user_is_simulated_then_refused() -> None:
    # RFC 5802 §5.1: a challenge as for a real account, then the proof fails.
    with pytest.raises(SaslFailure) as info:
        run_scram("SCRAM-SHA-256", Scram("SCRAM-SHA-256"), None)
    assert info.value.condition is SaslCondition.NOT_AUTHORIZED


def test_scram_fake_salt_is_stable_per_secret() -> None:
    def server_first(secret: bytes) -> str:
        server = Scram("SCRAM-SHA-1", fake_secret=secret, nonce="n")
        server.start(b"n,,n=nobody,r=abc")
        step = server.provide_credentials(None)
        assert isinstance(step, Challenge)
        return step.data.decode()

    assert server_first(b"k" * 32) == server_first(b"k" * 32)
    assert server_first(b"k" * 32) != server_first(b"j" * 32)


def test_scram_keys_of_another_hash_count_as_unknown() -> None:
    with pytest.raises(SaslFailure) as info:
        run_scram("SCRAM-SHA-1", Scram("SCRAM-SHA-1"), credentials("SCRAM-SHA-256"))
    assert info.value.condition is SaslCondition.NOT_AUTHORIZED


def test_scram_without_initial_response() -> None:
    server = Scram("SCRAM-SHA-256")
    assert server.start(None) == Challenge(b"")
    client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "alicepw")
    assert server.respond(client.get_client_first().encode()) == CredentialsNeeded(
        "alice", None, "SCRAM-SHA-256"
    )


def test_scram_unusable_stored_keys_are_a_temporary_failure() -> None:
    good = credentials("SCRAM-SHA-256")
    short_salt = ScramCredentials("SCRAM-SHA-256", b"short", 4096, good.stored_key, good.server_key)
    with pytest.raises(SaslFailure) as info:
        run_scram("SCRAM-SHA-256", Scram("SCRAM-SHA-256"), short_salt)
    assert info.value.condition is SaslCondition.TEMPORARY_AUTH_FAILURE


@pytest.mark.parametrize(
    ("first", "condition"),
    [
        (b"n,a=alice@localhost,n=alice,r=abc", SaslCondition.INVALID_AUTHZID),
        (b"n=alice,r=abc", SaslCondition.MALFORMED_REQUEST),
        (b"x,,n=alice,r=abc", SaslCondition.MALFORMED_REQUEST),
        (b"n,,r=abc,n=alice", SaslCondition.MALFORMED_REQUEST),
        (b"n,,n=al=41ice,r=abc", SaslCondition.MALFORMED_REQUEST),
        (b"n,,n=alice", SaslCondition.MALFORMED_REQUEST),
        (b"n,,n=al\xffice,r=abc", SaslCondition.MALFORMED_REQUEST),
        (b"p=tls-unique,,n=alice,r=abc", SaslCondition.MALFORMED_REQUEST),  # p without -PLUS
    ],
)
def test_scram_bad_client_first(first: bytes, condition: SaslCondition) -> None:
    with pytest.raises(SaslFailure) as info:
        Scram("SCRAM-SHA-1").start(first)
    assert info.value.condition is condition


def test_scram_escaped_user_name() -> None:
    step = Scram("SCRAM-SHA-1").start(b"n,,n=a=2Cb=3Dc,r=abc")
    assert step == CredentialsNeeded("a,b=c", None, "SCRAM-SHA-1")


def test_scram_respond_out_of_turn() -> None:
    with pytest.raises(SaslFailure):
        Scram("SCRAM-SHA-1").respond(b"c=biws,r=x,p=AAAA")


def test_scram_replays_the_aioxmpp_transcript_byte_for_byte() -> None:
    """Prosody's challenge and success, regenerated from the client's exact messages."""
    server = Scram("SCRAM-SHA-1", nonce="7f5cc69d-721c-4119-952a-769003282368")
    server.start(base64.b64decode("biwsbj1hbGljZSxyPTNiUEdRT0Q1N3hUMmdnNzc3VWp2"))
    challenge = server.provide_credentials(credentials("SCRAM-SHA-1", iterations=10000))
    assert challenge == Challenge(
        base64.b64decode(
            "cj0zYlBHUU9ENTd4VDJnZzc3N1VqdjdmNWNjNjlkLTcyMWMtNDExOS05NTJhLTc2OTAwMzI4MjM2OCxzPU9XSmhN"
            "V0UxWkdJdE9HSmhNQzAwTVRsa0xUaGtZVGN0WW1aaFpUSTFNelZoTXpreixpPTEwMDAw"
        )
    )
    success = server.respond(
        base64.b64decode(
            "Yz1iaXdzLHI9M2JQR1FPRDU3eFQyZ2c3NzdVanY3ZjVjYzY5ZC03MjFjLTQxMTktOTUyYS03NjkwMDMyODIzNjgs"
            "cD1IMktEUUFqQlFlVGhUSzUzL0JhN012aTJ0Y009"
        )
    )
    assert success == Success(base64.b64decode("dj1Dam5KdUViZkU4THhleHphdUFZdERsVzBNeUU9"))


# -- SCRAM-PLUS (RFC 5802 §6, RFC 5929) ------------------------------------------------------

CB = {"tls-server-end-point": b"\x01" * 32}


def test_scram_plus_success() -> None:
    server = Scram("SCRAM-SHA-256-PLUS", channel_binding=CB, plus_offered=True)
    client, step = run_scram(
        "SCRAM-SHA-256-PLUS",
        server,
        credentials("SCRAM-SHA-256"),
        channel_binding=("tls-server-end-point", CB["tls-server-end-point"]),
    )
    assert isinstance(step, Success) and step.data is not None
    client.set_server_final(step.data.decode())


def test_scram_plus_wrong_binding_data() -> None:
    server = Scram("SCRAM-SHA-256-PLUS", channel_binding=CB, plus_offered=True)
    with pytest.raises(SaslFailure) as info:
        run_scram(
            "SCRAM-SHA-256-PLUS",
            server,
            credentials("SCRAM-SHA-256"),
            channel_binding=("tls-server-end-point", b"\x02" * 32),  # a MITM's certificate
        )
    assert info.value.condition is SaslCondition.NOT_AUTHORIZED


def test_scram_plus_unsupported_binding_type() -> None:
    server = Scram("SCRAM-SHA-256-PLUS", channel_binding=CB, plus_offered=True)
    with pytest.raises(SaslFailure) as info:
        server.start(b"p=tls-unique,,n=alice,r=abc")
    assert info.value.condition is SaslCondition.NOT_AUTHORIZED


def test_scram_plus_needs_the_p_flag() -> None:
    server = Scram("SCRAM-SHA-256-PLUS", channel_binding=CB, plus_offered=True)
    with pytest.raises(SaslFailure) as info:
        server.start(b"n,,n=alice,r=abc")
    assert info.value.condition is SaslCondition.MALFORMED_REQUEST


def test_scram_downgrade_is_detected() -> None:
    # gs2 flag 'y': "I can bind but you don't offer it" — yet we offered -PLUS.
    server = Scram("SCRAM-SHA-256", channel_binding=CB, plus_offered=True)
    with pytest.raises(SaslFailure) as info:
        server.start(b"y,,n=alice,r=abc")
    assert info.value.condition is SaslCondition.NOT_AUTHORIZED


def test_scram_y_flag_is_fine_without_plus() -> None:
    # slixmpp sends 'y' (transcript): right when the server offers no -PLUS.
    assert Scram("SCRAM-SHA-1").start(b"y,,n=alice,r=abc") == CredentialsNeeded("alice", None, "SCRAM-SHA-1")


# -- what to offer ---------------------------------------------------------------------------


def test_offered_mechanisms() -> None:
    offer = sasl.offered_mechanisms
    every = sasl.ALL_MECHANISMS
    assert offer(every, encrypted=False, allow_unencrypted_plain=False, channel_binding=None) == [
        "SCRAM-SHA-256",
        "SCRAM-SHA-1",
    ]
    assert offer(every, encrypted=False, allow_unencrypted_plain=True, channel_binding=None)[-1] == "PLAIN"
    assert offer(every, encrypted=True, allow_unencrypted_plain=False, channel_binding=None) == [
        "SCRAM-SHA-256",
        "SCRAM-SHA-1",
        "PLAIN",
    ]
    assert offer(every, encrypted=True, allow_unencrypted_plain=False, channel_binding=CB)[:2] == [
        "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-1-PLUS",
    ]
    # scramp cannot verify tls-exporter (RFC 9266), so it earns no -PLUS.
    tls13 = {"tls-exporter": b"\x00" * 32}
    assert "SCRAM-SHA-256-PLUS" not in offer(
        every, encrypted=True, allow_unencrypted_plain=False, channel_binding=tls13
    )
    with pytest.raises(ValueError):
        offer(["DIGEST-MD5"], encrypted=True, allow_unencrypted_plain=False, channel_binding=None)
