"""XEP-0313 message archives (MAM v2) with XEP-0059 paging and XEP-0359 stanza ids."""

from xmlchat.modules.archive.module import HISTORY, HISTORY_NS, Archive

__all__ = ["HISTORY", "HISTORY_NS", "Archive"]
