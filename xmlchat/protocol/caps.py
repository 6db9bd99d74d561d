"""XEP-0115 Entity Capabilities: the verification string and the ``<c/>`` element.

Pure functions, shared by the server (its own caps in stream features and
disco, §6.3) and the PEP module (contacts' caps decide their ``+notify``
interests, XEP-0163 §4.3).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from lxml import etree

CAPS_NS: Final = "http://jabber.org/protocol/caps"
DISCO_INFO_NS: Final = "http://jabber.org/protocol/disco#info"
DATA_NS: Final = "jabber:x:data"
# The node the server names itself by (§4: a URI for the software).
SERVER_NODE: Final = "https://xmlchat.invalid/caps"
# §5.4: the hash functions a receiver checks; others are kept unverified.
HASHES: Final = {"sha-1": "sha1", "sha-256": "sha256"}


@dataclass(frozen=True, slots=True)
class CapsIdentity:
    category: str
    type: str
    lang: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class Caps:
    """What a ``<c/>`` announced: the node, the hash function and the ver."""

    node: str
    hash: str
    ver: str


def verification_string(
    identities: Iterable[CapsIdentity], features: Iterable[str], forms: Iterable[etree._Element] = ()
) -> str:
    """§5.1: sorted identities, then sorted features, then XEP-0128 forms, each ``<``-terminated."""
    out = [
        f"{i.category}/{i.type}/{i.lang}/{i.name}<"
        for i in sorted(identities, key=lambda i: (i.category, i.type, i.lang, i.name))
    ]
    out += [f"{var}<" for var in sorted(set(features))]
    for form_type, fields in sorted(_form_fields(form) for form in forms):
        out.append(f"{form_type}<")
        for var, values in sorted(fields):
            out.append(f"{var}<" + "".join(f"{v}<" for v in sorted(values)))
    return "".join(out)


def ver(
    identities: Iterable[CapsIdentity],
    features: Iterable[str],
    forms: Iterable[etree._Element] = (),
    hash_name: str = "sha-1",
) -> str:
    """§5.1 step 7–8: base64 of the hash of the verification string."""
    text = verification_string(identities, features, forms).encode("utf-8")
    return base64.b64encode(hashlib.new(HASHES[hash_name], text).digest()).decode("ascii")


def ver_of_disco_info(query: etree._Element, hash_name: str) -> str:
    """The ver a disco#info answer hashes to (§5.4: the receiver recomputes it)."""
    identities = [
        CapsIdentity(
            i.get("category", ""),
            i.get("type", ""),
            i.get("{http://www.w3.org/XML/1998/namespace}lang", ""),
            i.get("name", ""),
        )
        for i in query.iterchildren(f"{{{DISCO_INFO_NS}}}identity")
    ]
    features = [f.get("var", "") for f in query.iterchildren(f"{{{DISCO_INFO_NS}}}feature")]
    forms = list(query.iterchildren(f"{{{DATA_NS}}}x"))
    return ver(identities, features, forms, hash_name)


def element(caps: Caps) -> etree._Element:
    """``<c xmlns='http://jabber.org/protocol/caps' hash= node= ver=/>``."""
    return etree.Element(
        f"{{{CAPS_NS}}}c", {"hash": caps.hash, "node": caps.node, "ver": caps.ver}, nsmap={None: CAPS_NS}
    )


def from_presence(presence: etree._Element) -> Caps | None:
    """The ``<c/>`` a presence carries, if it is complete (§4)."""
    c = next(presence.iterchildren(f"{{{CAPS_NS}}}c"), None)
    if c is None:
        return None
    node, hash_name, ver_ = c.get("node"), c.get("hash"), c.get("ver")
    if not node or not hash_name or not ver_:
        return None  # §4: the legacy format (no 'hash') is not used for +notify
    return Caps(node, hash_name, ver_)


def _form_fields(form: etree._Element) -> tuple[str, list[tuple[str, list[str]]]]:
    form_type = ""
    fields: list[tuple[str, list[str]]] = []
    for field in form.iterchildren(f"{{{DATA_NS}}}field"):
        values = [v.text or "" for v in field.iterchildren(f"{{{DATA_NS}}}value")]
        if field.get("var") == "FORM_TYPE":
            form_type = values[0] if values else ""
        else:
            fields.append((field.get("var", ""), values))
    return form_type, fields
