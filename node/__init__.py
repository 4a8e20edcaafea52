"""The OpenSeats node: the service an organisation runs.

This package grows issue by issue (see DESIGN.md for the planned layout:
``app``, ``settings``, ``db``, ``publishing``, ``federation``,
``catalogue``, ``reservations``, ``web``, ``scheduler``, ``cli``).  It
depends on :mod:`protocol` for everything that crosses the wire; the
reverse is never true.
"""
