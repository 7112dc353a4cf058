"""A cache of rendered patient pages, keyed by the patient's data version.

Every change to a patient's records (form, API, import, lock, signature, query, deletion)
writes an audit row carrying the patient's id in the same transaction
(``cartrial.store.audit``, ``cohort_io``), and audit ids ascend in commit order (the
hash chain's head is locked until commit). So the largest audit id of a patient is a
version of everything the patient page shows: one indexed query decides whether a page
rendered earlier is still right.

The key also holds the whole ``Principal`` (id, name, role, site): a page is only ever
served again to the user it was rendered for, with the same rights, so access checks made
while rendering still hold. The CSRF token is not stored: pages are rendered with a
per-process marker that is replaced by the session's token when served.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Hashable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cartrial.store.models import AuditEntry

#: rendered in place of the CSRF token; random per process, so no data can contain it
CSRF_MARKER = "csrf-" + secrets.token_hex(16)


def patient_version(db: Session, patient_id: str) -> int:
    """The patient's data version: the id of the last audit entry about the patient."""
    last = db.scalar(select(func.max(AuditEntry.id)).where(AuditEntry.patient_id == patient_id))
    return int(last or 0)


class PageCache:
    """A bounded, thread-safe LRU map from a key to rendered HTML (CSRF marker inside)."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._pages: OrderedDict[Hashable, str] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, csrf: str) -> str | None:
        with self._lock:
            html = self._pages.get(key)
            if html is None:
                self.misses += 1
                return None
            self._pages.move_to_end(key)
            self.hits += 1
        return html.replace(CSRF_MARKER, csrf)

    def put(self, key: Hashable, html: str) -> None:
        with self._lock:
            self._pages[key] = html
            self._pages.move_to_end(key)
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()
