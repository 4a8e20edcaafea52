"""Importing local sessions from files people already have: CSV and ICS.

Peer-learning programmes keep their sessions in a SharePoint calendar, an
Outlook calendar or an Excel list, and today somebody types them in a
second time.  These parsers turn such a file into :class:`SessionInput`
values so that nobody has to.

Design:

* **Pure parsers.**  :func:`parse_csv` and :func:`parse_ics` take bytes and
  an injected ``now`` and return a :class:`ParseResult`.  They touch no
  database, no network and no clock, so the admin API, the CLI and the tests
  all call them the same way, and a preview ("what would be imported?") is
  simply a parse without a commit.
* **One validation point.**  Every record goes through
  :class:`node.publishing.input.SessionInput`, exactly like a session typed
  into the admin UI; pydantic's errors are translated into stable problem
  codes (``bad_date``, ``bad_duration``, ``unknown_timezone``,
  ``missing_title``, ``start_in_past``, ...) with German-first messages.
* **Stable keys, upsert by key.**  Each :class:`ImportedSession` carries a
  ``key``: the ICS UID (``"{uid}#{start in UTC}"`` for one instance of a
  recurring event), the CSV ``key``/``Schlüssel`` column, or else a hash of
  title and start.  The caller upserts by ``(source, key)``, so importing
  the same calendar again updates sessions instead of duplicating them, and
  ``cancelled=True`` cancels the session that key created earlier.  What to
  do with keys that vanished from a re-import is the caller's decision; the
  parsers only describe the file.
* **Skip the bad record, keep the rest.**  A record that cannot become a
  session yields :class:`ImportProblem` entries (``where`` is ``"line 7"``
  for CSV with the header as line 1, ``"UID …"`` or ``"VEVENT #3"`` for
  ICS) and is left out; everything else still imports.  Only a file that is
  unusable as a whole (wrong encoding, not CSV/ICS, required columns
  missing, empty) raises :class:`ImportFileError`.
* **The past is not an error in calendars.**  Exports are full of old
  events; ICS counts them in ``skipped_past``.  In a CSV written for the
  import, a past start is a mistake and is reported as ``start_in_past``.

How ICS data is read where calendars are vague (``ics_import``):

* Timezone: DTSTART's TZID as IANA, Windows (``W. Europe Standard Time``)
  or Outlook display name, else icalendar's lookup (vendor prefixes, the
  full CLDR Windows table).  A custom VTIMEZONE ("Customized Time Zone")
  with the offsets of ``default_timezone`` counts as that zone; anything
  else is ``unknown_timezone``.  UTC and floating times are shown in the
  default zone.
* Host: X-OPENSEATS-HOST, ORGANIZER's CN, the local part of the organizer's
  address; with none of them the event is ``missing_host`` rather than
  published under an invented name.
* Format: X-OPENSEATS-FORMAT, the title's first word ("Impuls: …", "AMA mit
  …", "Werkstatt: …"), a CATEGORY naming a format, else SessionInput's
  default.  Language: SUMMARY's LANGUAGE parameter, else ``de``.
* Join link: Teams/Google conference properties, a link in LOCATION, or a
  Teams/Zoom/Meet/Webex/Jitsi link in DESCRIPTION.  URL is the details link.
* Cancelled: STATUS:CANCELLED, METHOD:CANCEL or Outlook's "Abgesagt: "
  prefix (removed from the title).
* Past: ``skipped_past`` counts VEVENTs (a series only when it has no
  future instance).  The horizon bounds recurrence only; single events
  beyond it are kept.
"""

from node.imports.csv_import import parse_csv
from node.imports.ics_import import parse_ics
from node.imports.report import ImportedSession, ImportFileError, ImportProblem, ParseResult

__all__ = [
    "ImportFileError",
    "ImportProblem",
    "ImportedSession",
    "ParseResult",
    "parse_csv",
    "parse_ics",
]
