"""What a reload (SIGHUP, ``xmlchat reload``) may change while sessions stay up.

The configuration is read again from where it came from (the same file, the
environment the server started with, the same command-line flags). Three
sections take effect at once: ``log`` (level and format), ``limits`` (every
connection reads them from then on; the stanza size and nesting limits apply
to connections opened after the reload, whose parsers are made with them) and
``tls`` (the certificate and key are loaded again even when the file names
did not change: a renewed certificate under the same name is the usual case).
Anything else (listeners, hosts, storage, metrics, archive) needs a restart:
it is reported, and left as it was.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final

from xmlchat.config import Config

RELOADABLE: Final = ("log", "limits", "tls")


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    config: Config  # what the server runs with after the reload
    applied: list[str]  # changed keys that took effect
    needs_restart: list[str]  # changed keys left as they were


def plan(running: Config, loaded: Config) -> ReloadPlan:
    changed = sorted(key for key, value in _flat(loaded).items() if _flat(running).get(key) != value)
    applied = [key for key in changed if key.split(".", 1)[0] in RELOADABLE]
    later = [key for key in changed if key not in applied]
    config = running.replace(**{section: getattr(loaded, section) for section in RELOADABLE})
    return ReloadPlan(config, applied, later)


def _flat(config: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        key = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(value):
            out.update(_flat(value, f"{key}."))
        else:
            out[key] = value
    return out
