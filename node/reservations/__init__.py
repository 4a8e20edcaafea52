"""Reservations: the host's node decides every seat.

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

States of a host-side reservation::

    (new) -> confirmed | held | waitlisted | pending | rejected
    held -> confirmed (confirm) | rejected:hold_expired (timer) | cancelled
    waitlisted -> confirmed (promotion) | cancelled
    pending -> confirmed | waitlisted | rejected (admin decides) | cancelled
    confirmed -> cancelled
"""
