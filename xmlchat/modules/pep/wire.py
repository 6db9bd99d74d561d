"""The XEP-0060 elements PEP uses (XEP-0163): requests read, results and
event notifications built, publish-options and node configuration forms."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.stanza import from_bytes, make, new_id
from xmlchat.storage import ACCESS_MODELS, PepItem, PepNode

NS: Final = "http://jabber.org/protocol/pubsub"
OWNER_NS: Final = f"{NS}#owner"
EVENT_NS: Final = f"{NS}#event"
ERRORS_NS: Final = f"{NS}#errors"
DATA_NS: Final = "jabber:x:data"
PUBLISH_OPTIONS: Final = f"{NS}#publish-options"
NODE_CONFIG: Final = f"{NS}#node_config"

# XEP-0060 §10: what this service does, as disco features of each account.
FEATURES: Final = tuple(
    f"{NS}#{name}"
    for name in (
        "access-open", "access-presence", "access-whitelist", "auto-create", "auto-subscribe",
        "config-node", "delete-items", "delete-nodes", "filtered-notifications", "last-published",
        "persistent-items", "publish", "publish-options", "retract-items", "retrieve-items",
    )
)  # fmt: skip


def pubsub_error(condition: StanzaCondition, name: str, text: str = "") -> StanzaError:
    """A stanza error with a ``pubsub#errors`` condition (XEP-0060 §7, §6.5)."""
    return StanzaError(condition, text, application=(ERRORS_NS, name))


def node_of(request: etree._Element) -> str:
    """The request's node: PEP has no root collection, so it is required."""
    node = request.get("node")
    if not node:
        raise pubsub_error(StanzaCondition.BAD_REQUEST, "nodeid-required")
    return node


def form_values(form: etree._Element | None, form_type: str) -> dict[str, str]:
    """The fields of an XEP-0004 form of ``form_type`` (first values); {} for no form."""
    if form is None:
        return {}
    values = {
        field.get("var", ""): next((v.text or "" for v in field.iterchildren(f"{{{DATA_NS}}}value")), "")
        for field in form.iterchildren(f"{{{DATA_NS}}}field")
    }
    if values.pop("FORM_TYPE", form_type) != form_type:
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"expected a {form_type} form")
    return values


def configured(
    name: str, options: dict[str, str], max_items_limit: int, base: PepNode | None = None
) -> PepNode:
    """A node's configuration from ``pubsub#*`` options over ``base`` (or the
    defaults); an option the service cannot honour is not-acceptable."""
    node = base or PepNode(name)
    access, max_items, persist = node.access, node.max_items, node.persist
    if "pubsub#access_model" in options:
        wanted = options["pubsub#access_model"]
        if wanted not in ACCESS_MODELS:
            raise pubsub_error(StanzaCondition.NOT_ACCEPTABLE, "unsupported-access-model")
        access = wanted  # type: ignore[assignment]
    if "pubsub#max_items" in options:
        max_items = _max_items(options["pubsub#max_items"], max_items_limit)
    if "pubsub#persist_items" in options:
        persist = _boolean(options["pubsub#persist_items"])
    return PepNode(name, access, max_items, persist)


def form(node: PepNode) -> etree._Element:
    """The node's configuration as a ``pubsub#node_config`` form (§16.4)."""
    x = etree.Element(f"{{{DATA_NS}}}x", type="form", nsmap={None: DATA_NS})
    fields = [
        ("FORM_TYPE", "hidden", NODE_CONFIG),
        ("pubsub#access_model", "list-single", node.access),
        ("pubsub#max_items", "text-single", str(node.max_items)),
        ("pubsub#persist_items", "boolean", "1" if node.persist else "0"),
    ]
    for var, type_, value in fields:
        field = etree.SubElement(x, f"{{{DATA_NS}}}field", var=var, type=type_)
        etree.SubElement(field, f"{{{DATA_NS}}}value").text = value
    return x


def items_result(node: str, items: Iterable[PepItem]) -> etree._Element:
    pubsub = etree.Element(f"{{{NS}}}pubsub", nsmap={None: NS})
    holder = etree.SubElement(pubsub, f"{{{NS}}}items", node=node)
    for item in items:
        holder.append(item_element(NS, item))
    return pubsub


def publish_result(node: str, item_id: str) -> etree._Element:
    pubsub = etree.Element(f"{{{NS}}}pubsub", nsmap={None: NS})
    publish = etree.SubElement(pubsub, f"{{{NS}}}publish", node=node)
    etree.SubElement(publish, f"{{{NS}}}item", id=item_id)
    return pubsub


def item_element(ns: str, item: PepItem) -> etree._Element:
    element = etree.Element(f"{{{ns}}}item", id=item.id)
    element.append(from_bytes(item.payload))
    return element


def event(owner: str, body: etree._Element) -> etree._Element:
    """``<message type='headline' from=owner><event>body</event></message>`` (§7.1.2.1)."""
    message = make("message", {"from": owner, "type": "headline", "id": new_id()})
    etree.SubElement(message, f"{{{EVENT_NS}}}event", nsmap={None: EVENT_NS}).append(body)
    return message


def published_event(node: str, item: PepItem) -> etree._Element:
    items = etree.Element(f"{{{EVENT_NS}}}items", node=node)
    items.append(item_element(EVENT_NS, item))
    return items


def retracted_event(node: str, item_id: str) -> etree._Element:
    items = etree.Element(f"{{{EVENT_NS}}}items", node=node)
    etree.SubElement(items, f"{{{EVENT_NS}}}retract", id=item_id)
    return items


def _max_items(value: str, limit: int) -> int:
    if value == "max":  # XEP-0060 §16.4.4 (XEP-0402 asks for it)
        return limit
    try:
        count = int(value)
    except ValueError:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "pubsub#max_items must be a number") from None
    if not 1 <= count <= limit:
        raise pubsub_error(StanzaCondition.NOT_ACCEPTABLE, "invalid-options", f"max_items is 1 to {limit}")
    return count


def _boolean(value: str) -> bool:
    if value not in ("0", "1", "true", "false"):
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"not a boolean: {value!r}")
    return value in ("1", "true")
