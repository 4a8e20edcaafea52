"""Reservations: the requester asks, the host's node decides every seat.

``ledger``
    The seat ledger on the host side.  Every decision is one database
    transaction; seats are taken with conditional ``UPDATE``s
    (``seats_taken + n <= open_seats``, and the partner's cap likewise),
    never by reading and writing back a count, so concurrent requests from
    any number of partners and processes can never overbook.  The waitlist
    is strictly FIFO by arrival; a freed seat goes to the first waitlisted
    reservation that fits, and nobody behind it jumps the queue.  Each
    change bumps the reservation's ``version`` so the requester can apply
    answers in order.
``host``
    The host's desk around the ledger: answers the protocol's PUT, GET,
    DELETE and confirm, lets the admin approve, decline, cancel and cap,
    and queues a notice in the outbox in the same transaction as every
    later change, so notices are never lost nor sent for a rolled-back
    change.
``requester``
    Our employees' reservations at partners.  The portal's request is
    stored as ``requested`` and sent through the outbox; the row only ever
    shows what the host answered (never "confirmed" before the host said
    so), applied by version.
``portal_input``
    Validation of the portal's body, one error code per kind of mistake.
``invite``
    The personal iCalendar invitation with the join link once confirmed.

Privacy (SPEC.md §12): only ``ref``, ``display_name`` and, when the host
requires it, ``email`` cross organisations; both sides delete attendee data
``attendee_retention_days`` after the session and on request per ``ref``.

States of a host-side reservation::

    (new) -> confirmed | held | waitlisted | pending | rejected
    held -> confirmed (confirm) | rejected:hold_expired (timer) | cancelled
    waitlisted -> confirmed (promotion) | cancelled
    pending -> confirmed | waitlisted | rejected (admin decides) | cancelled
    confirmed -> cancelled

The requester adds ``requested`` in front: its state until the first answer.
"""
