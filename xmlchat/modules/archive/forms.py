"""The query of XEP-0313 v2 (``urn:xmpp:mam:2``): its XEP-0004 form and XEP-0059 ``<set>``.

A query element becomes the store's :class:`~xmlchat.storage.ArchiveQuery` and
:class:`~xmlchat.storage.PageRequest`; anything malformed is a ``bad-request``
(XEP-0313 §4.1: a field the server does not know is one too).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID
from xmlchat.storage import ArchiveQuery, PageRequest

NS: Final = "urn:xmpp:mam:2"
EXTENDED: Final = f"{NS}#extended"  # before-id, after-id, ids, metadata (§4.1.3, §4.1.4, §6)
DATA_NS: Final = "jabber:x:data"
RSM_NS: Final = "http://jabber.org/protocol/rsm"

# var -> XEP-0004 field type, as returned by form discovery (XEP-0313 §4.1, §4.2).
FIELDS: Final = {
    "with": "jid-single",
    "start": "text-single",
    "end": "text-single",
    "before-id": "text-single",
    "after-id": "text-single",
    "ids": "text-multi",
}


def form_template() -> etree._Element:
    """``<x type='form'>`` with the fields a query may use (§4.2 "Retrieving form fields")."""
    x = etree.Element(f"{{{DATA_NS}}}x", type="form", nsmap={None: DATA_NS})
    form_type = etree.SubElement(x, f"{{{DATA_NS}}}field", type="hidden", var="FORM_TYPE")
    etree.SubElement(form_type, f"{{{DATA_NS}}}value").text = NS
    for var, type_ in FIELDS.items():
        etree.SubElement(x, f"{{{DATA_NS}}}field", type=type_, var=var)
    return x


def parse_query(query: etree._Element, max_page: int) -> tuple[ArchiveQuery, PageRequest]:
    return _filter(_form_values(query)), _page(query.find(f"{{{RSM_NS}}}set"), max_page)


def _form_values(query: etree._Element) -> dict[str, list[str]]:
    x = query.find(f"{{{DATA_NS}}}x")
    if x is None:
        return {}
    if x.get("type", "submit") != "submit":
        raise StanzaError(StanzaCondition.BAD_REQUEST, "the form must be of type submit")
    values: dict[str, list[str]] = {}
    for field in x.iterfind(f"{{{DATA_NS}}}field"):
        var = field.get("var", "")
        values[var] = [value.text or "" for value in field.iterfind(f"{{{DATA_NS}}}value")]
    form_type = values.pop("FORM_TYPE", [NS])
    if form_type != [NS]:
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"FORM_TYPE must be {NS}")
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"unknown field {unknown[0]!r}")
    return values


def _filter(values: dict[str, list[str]]) -> ArchiveQuery:
    with_ = _single(values, "with")
    ids = values.get("ids")
    return ArchiveQuery(
        with_=None if with_ is None else _jid(with_),
        start=_time(_single(values, "start")),
        end=_time(_single(values, "end")),
        after_id=_single(values, "after-id"),
        before_id=_single(values, "before-id"),
        ids=None if ids is None else tuple(ids),
    )


def _single(values: dict[str, list[str]], var: str) -> str | None:
    found = values.get(var)
    if not found:
        return None
    if len(found) > 1 or not found[0]:
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"field {var!r} takes one value")
    return found[0]


def _jid(text: str) -> JID:
    try:
        return JID.parse(text)
    except InvalidJID:
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"bad JID {text!r} in 'with'") from None


def _time(text: str | None) -> datetime | None:
    """XEP-0082 DateTime: a zone is required ('Z' or an offset)."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"bad XEP-0082 time {text!r}")
    return when


def _page(rsm: etree._Element | None, max_page: int) -> PageRequest:
    if rsm is None:
        return PageRequest(max=max_page)
    if rsm.find(f"{{{RSM_NS}}}index") is not None:
        # XEP-0059 §2.6: jumping to an index is optional; we page by id only.
        raise StanzaError(StanzaCondition.FEATURE_NOT_IMPLEMENTED, "paging by index is not supported")
    max_ = _max(rsm.findtext(f"{{{RSM_NS}}}max"), max_page)
    after = rsm.findtext(f"{{{RSM_NS}}}after")
    before = rsm.find(f"{{{RSM_NS}}}before")
    if after is not None and not after:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "<after/> needs an id")
    if before is None:
        return PageRequest(max=max_, after=after)
    # §2.5: an empty <before/> asks for the last page.
    return PageRequest(max=max_, after=after, before=before.text or None, last=not before.text)


def _max(text: str | None, max_page: int) -> int:
    if text is None:
        return max_page
    try:
        max_ = int(text.strip())
    except ValueError:
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"bad <max> {text!r}") from None
    if max_ < 0:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "<max> must not be negative")
    if max_ > max_page:
        raise StanzaError(StanzaCondition.POLICY_VIOLATION, f"at most {max_page} messages per page")
    return max_
