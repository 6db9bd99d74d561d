"""XEP-0115 verification strings and hashes, against the XEP's own examples (§5.2, §5.3)."""

from __future__ import annotations

from lxml import etree

from xmlchat.protocol import caps

SIMPLE_FEATURES = [
    "http://jabber.org/protocol/disco#items",
    "http://jabber.org/protocol/caps",
    "http://jabber.org/protocol/disco#info",
    "http://jabber.org/protocol/muc",
]

COMPLEX = """
<query xmlns='http://jabber.org/protocol/disco#info'>
  <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
  <identity xml:lang='el' category='client' name='&#936; 0.11' type='pc'/>
  <feature var='http://jabber.org/protocol/disco#items'/>
  <feature var='http://jabber.org/protocol/caps'/>
  <feature var='http://jabber.org/protocol/disco#info'/>
  <feature var='http://jabber.org/protocol/muc'/>
  <x xmlns='jabber:x:data' type='result'>
    <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>
    <field var='ip_version'><value>ipv4</value><value>ipv6</value></field>
    <field var='os'><value>Mac</value></field>
    <field var='os_version'><value>10.5.1</value></field>
    <field var='software'><value>Psi</value></field>
    <field var='software_version'><value>0.11</value></field>
  </x>
</query>
"""


def test_the_simple_example_of_section_5_2() -> None:
    identity = caps.CapsIdentity("client", "pc", name="Exodus 0.9.1")
    assert caps.verification_string([identity], SIMPLE_FEATURES) == (
        "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<"
        "http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<"
        "http://jabber.org/protocol/muc<"
    )
    assert caps.ver([identity], SIMPLE_FEATURES) == "QgayPKawpkPSDYmwT/WM94uAlu0="


def test_the_complex_example_of_section_5_3_from_a_disco_answer() -> None:
    query = etree.fromstring(COMPLEX)
    assert caps.ver_of_disco_info(query, "sha-1") == "q07IKJEyjvHSyhy//CH0CxmKi8w="


def test_presence_caps_need_node_hash_and_ver() -> None:
    presence = etree.fromstring(
        "<presence xmlns='jabber:client'><c xmlns='http://jabber.org/protocol/caps' "
        "hash='sha-1' node='http://psi-im.org' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>"
    )
    found = caps.from_presence(presence)
    assert found == caps.Caps("http://psi-im.org", "sha-1", "q07IKJEyjvHSyhy//CH0CxmKi8w=")
    legacy = etree.fromstring(
        "<presence xmlns='jabber:client'><c xmlns='http://jabber.org/protocol/caps' "
        "node='http://psi-im.org' ver='0.11'/></presence>"
    )
    assert caps.from_presence(legacy) is None
    element = caps.element(found)
    assert (
        caps.from_presence(etree.fromstring(f"<presence>{etree.tostring(element).decode()}</presence>"))
        == found
    )
