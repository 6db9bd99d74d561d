"""The nickname profile and the room configuration form, on their own."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.modules.muc.form import RoomConfig, form, submitted_values
from xmlchat.modules.muc.names import DATA, ROOMCONFIG, nick_key, nickname


@given(st.text(min_size=1, max_size=40))
def test_a_canonical_nickname_is_stable_and_trimmed(text: str) -> None:
    try:
        nick = nickname(text)
    except StanzaError as e:
        assert e.condition == StanzaCondition.JID_MALFORMED
        return
    assert nick == nickname(nick) == nick.strip() and "  " not in nick


def test_nicknames_compare_case_folded_after_width_and_space_mapping() -> None:
    assert nickname("\u3000Ａlice\u00a0\u00a0Smith ") == "Alice Smith"  # fullwidth A, ideographic space
    assert nick_key("Alice Smith") == nick_key("ALICE SMITH")
    for bad in ("", "   ", "a\u200bb"):
        with pytest.raises(StanzaError):
            nickname(bad)


def _submit(**fields: str) -> etree._Element:
    x = etree.Element(f"{{{DATA}}}x", type="submit")
    for var, value in {"FORM_TYPE": ROOMCONFIG, **fields}.items():
        field = etree.SubElement(x, f"{{{DATA}}}field", var=var)
        etree.SubElement(field, f"{{{DATA}}}value").text = value
    return x


def test_the_form_round_trips_and_refuses_bad_values() -> None:
    config = RoomConfig.from_values(
        submitted_values(
            _submit(**{"muc#roomconfig_roomsecret": "pw", "muc#roomconfig_maxusers": "7", "x": "?"})
        )
    )
    assert (config.password, config.max_users) == ("pw", 7)
    shown = {f.get("var"): f.findtext(f"{{{DATA}}}value") for f in form(config, "t").iter(f"{{{DATA}}}field")}
    assert shown["muc#roomconfig_passwordprotectedroom"] == "1" and shown["muc#roomconfig_roomsecret"] == "pw"
    assert RoomConfig.from_values({"muc#roomconfig_passwordprotectedroom": "0"}, config).password == ""
    assert RoomConfig.from_values(config.values()) == config  # as stored, as loaded
    for var, value in (("membersonly", "maybe"), ("maxusers", "-1"), ("whois", "everyone")):
        with pytest.raises(StanzaError) as info:
            RoomConfig.from_values({f"muc#roomconfig_{var}": value})
        assert info.value.condition == StanzaCondition.NOT_ACCEPTABLE
    with pytest.raises(StanzaError):
        submitted_values(_submit(FORM_TYPE="urn:other"))
