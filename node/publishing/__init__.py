"""Publishing: local sessions become signed announcement versions in the feed.

Flow: an admin (API, CLI) or an import (CSV, ICS) creates or changes a
local session -> the session row changes and, if partners can see the
change, a new announcement version is signed in the same transaction ->
the session's feed row is marked dirty -> after commit the feed stamper
gives it the next change number (see :mod:`node.db.feed`) -> partners
pulling ``/protocol/v1/feed`` see the new version, or a deleted item if
the session left their audience.
"""
