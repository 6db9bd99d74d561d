"""What every connection's core would hold alike is held once (issue 16: KiB per
idle session): cores made with the same options share one Settings, with its
tuples, sets and extra feature elements; other options get their own."""

from __future__ import annotations

from lxml import etree

from xmlchat.protocol.xmpp import C2SStream

SECRET = b"s" * 32


def test_cores_made_with_the_same_options_share_their_settings() -> None:
    features = (etree.Element("{urn:xmpp:features:rosterver}ver"),)
    one, two = (
        C2SStream(["localhost"], tls_available=True, scram_secret=SECRET, features=features)
        for _ in range(2)
    )
    assert one._link.settings is two._link.settings
    other = C2SStream(["example.org"], tls_available=True, scram_secret=SECRET, features=features)
    assert other._link.settings is not one._link.settings
    assert other._link.settings.hosts == ("example.org",)
