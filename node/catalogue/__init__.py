"""The merged catalogue: own sessions and partners' open sessions in one place.

Partners' announcements arrive through the feed (:mod:`node.federation.
subscription`) and are merged by :mod:`node.catalogue.merge` under the
merge rules of SPEC.md §7.3: the signer is the origin and the peer we read
from, the key is pinned and was valid at ``issued_at``, the item is valid,
and its version is strictly greater than the stored one.  Anything else is
recorded as a rejection the admin can read, and the catalogue keeps its
previous good state.  Own sessions are written by the publishing service in
the same transaction as the change.

Portals read the catalogue as JSON (``/api/v1``), ICS (:mod:`.ics`) and
schema.org JSON-LD (:mod:`.jsonld`); full-text search uses the word index
of :mod:`.search`.  The join link never enters the catalogue.
"""
