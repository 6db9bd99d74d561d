"""A room's configuration and its XEP-0004 form (XEP-0045 §10.2, ``muc#roomconfig``).

:class:`RoomConfig` is what the room logic reads; the form is how an owner
sees and changes it, and :meth:`RoomConfig.values` is how a persistent room's
configuration is stored (field values as text).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final, Literal

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.modules.muc.names import DATA, ROOMCONFIG

Whois = Literal["moderators", "anyone"]

_TRUE: Final = frozenset({"1", "true"})
_FALSE: Final = frozenset({"0", "false"})


@dataclass(frozen=True, slots=True)
class RoomConfig:
    """Defaults as Prosody's: an open, public, temporary, semi-anonymous room."""

    name: str = ""
    description: str = ""
    persistent: bool = False
    public: bool = True
    members_only: bool = False
    moderated: bool = False
    password: str = ""
    max_users: int = 0  # 0: the service's limit
    whois: Whois = "moderators"
    change_subject: bool = False  # may participants (not only moderators) set the subject?
    allow_invites: bool = False  # may participants (not only admins) invite to a members-only room?
    archiving: bool = True  # XEP-0313 on the room, when the server keeps an archive

    @property
    def non_anonymous(self) -> bool:
        return self.whois == "anyone"

    def values(self) -> dict[str, str]:
        """Field var -> value text, as stored and as the form shows."""
        return {var: _text(getattr(self, attr)) for var, (attr, _, _) in FIELDS.items() if var != _PROTECTED}

    @classmethod
    def from_values(cls, values: Mapping[str, str], base: RoomConfig | None = None) -> RoomConfig:
        """``base`` with the given fields changed; ``not-acceptable`` for a bad value."""
        changes: dict[str, object] = {}
        for var, text in values.items():
            spec = FIELDS.get(var)
            if spec is None:
                continue  # §10.2: unknown fields are ignored
            attr, type_, _ = spec
            try:
                changes[attr] = _parse(var, type_, text)
            except _Keep:
                continue
        return replace(base or cls(), **changes)  # type: ignore[arg-type]


# var -> (attribute, XEP-0004 type, label)
FIELDS: Final[dict[str, tuple[str, str, str]]] = {
    "muc#roomconfig_roomname": ("name", "text-single", "Name"),
    "muc#roomconfig_roomdesc": ("description", "text-single", "Description"),
    "muc#roomconfig_persistentroom": ("persistent", "boolean", "Persistent (kept when empty)"),
    "muc#roomconfig_publicroom": ("public", "boolean", "Listed in the room directory"),
    "muc#roomconfig_membersonly": ("members_only", "boolean", "Members only"),
    "muc#roomconfig_moderatedroom": ("moderated", "boolean", "Moderated (visitors may not speak)"),
    "muc#roomconfig_passwordprotectedroom": ("password", "boolean", "Password protected"),
    "muc#roomconfig_roomsecret": ("password", "text-private", "Password"),
    "muc#roomconfig_maxusers": ("max_users", "text-single", "Most occupants (0: the service's limit)"),
    "muc#roomconfig_whois": ("whois", "list-single", "Who may see occupants' real addresses"),
    "muc#roomconfig_changesubject": ("change_subject", "boolean", "Participants may set the subject"),
    "muc#roomconfig_allowinvites": ("allow_invites", "boolean", "Participants may invite"),
    "muc#roomconfig_enablearchiving": ("archiving", "boolean", "Archive messages (XEP-0313)"),
}
_PROTECTED: Final = "muc#roomconfig_passwordprotectedroom"


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _parse(var: str, type_: str, text: str) -> object:
    if var == _PROTECTED:
        # Only a switch: turning it off clears the password; the secret field sets one.
        if text.strip() in _FALSE:
            return ""
        raise _Keep()
    if type_ == "boolean":
        if text.strip() in _TRUE:
            return True
        if text.strip() in _FALSE:
            return False
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, f"{var} must be a boolean")
    if var.endswith("_maxusers"):
        if not text.strip().isdigit():
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, f"{var} must be a number")
        return int(text)
    if var.endswith("_whois") and text not in ("moderators", "anyone"):
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "whois must be moderators or anyone")
    return text


class _Keep(Exception):
    """A field that changes nothing by itself."""


def submitted_values(x: etree._Element) -> dict[str, str]:
    """The fields of a submitted form (the first value of each)."""
    if x.get("type") != "submit":
        raise StanzaError(StanzaCondition.BAD_REQUEST, "the form must be of type submit")
    values: dict[str, str] = {}
    for field in x.iterfind(f"{{{DATA}}}field"):
        value = field.find(f"{{{DATA}}}value")
        values[field.get("var", "")] = "" if value is None else (value.text or "")
    form_type = values.pop("FORM_TYPE", f"{ROOMCONFIG}")
    if form_type != ROOMCONFIG:
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"FORM_TYPE must be {ROOMCONFIG}")
    return values


def form(config: RoomConfig, title: str) -> etree._Element:
    """``<x type='form'>`` showing ``config`` (§10.2)."""
    x = etree.Element(f"{{{DATA}}}x", type="form", nsmap={None: DATA})
    etree.SubElement(x, f"{{{DATA}}}title").text = title
    form_type = etree.SubElement(x, f"{{{DATA}}}field", var="FORM_TYPE", type="hidden")
    etree.SubElement(form_type, f"{{{DATA}}}value").text = ROOMCONFIG
    values = config.values()
    values[_PROTECTED] = _text(bool(config.password))
    for var, (_, type_, label) in FIELDS.items():
        field = etree.SubElement(x, f"{{{DATA}}}field", var=var, type=type_, label=label)
        if var.endswith("_whois"):
            for option in ("moderators", "anyone"):
                opt = etree.SubElement(field, f"{{{DATA}}}option", label=option)
                etree.SubElement(opt, f"{{{DATA}}}value").text = option
        etree.SubElement(field, f"{{{DATA}}}value").text = values[var]
    return x
