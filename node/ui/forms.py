"""Reading submitted forms: strings in, field errors out.

A page handler reads the form with :func:`read_form`, collects problems
in a ``dict`` of field name to :class:`~node.ui.i18n.Message` and, if
there are any, renders the same template again with ``values`` (what the
user typed) and ``errors``, status 400.  The macros in ``macros.html``
show each error next to its field in the current language and keep the
input.  Something that cannot be undone asks first: the handler renders
the ``ui.confirm`` macro unless :func:`confirmed` is true.
"""

from __future__ import annotations

from aiohttp import web

from node.ui.csrf import CSRF_FIELD
from node.ui.i18n import Message

FieldErrors = dict[str, Message]


async def read_form(request: web.Request) -> dict[str, str]:
    """The submitted text fields, stripped; files and the CSRF token left out.

    Passwords must not be stripped: read them from ``await request.post()``.
    """
    form = await request.post()
    return {
        name: value.strip()
        for name, value in form.items()
        if isinstance(value, str) and name != CSRF_FIELD
    }


def confirmed(form: dict[str, str]) -> bool:
    return form.get("confirmed") == "yes"


def required(form: dict[str, str], *names: str) -> FieldErrors:
    return {name: Message("form.required") for name in names if not form.get(name)}
