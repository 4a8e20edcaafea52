"""The node's HTML pages: the admin UI under ``/admin/`` and, later, the catalogue.

The people who choose which sessions to open are L&D and HR staff, so the
pages are plain server-rendered HTML from the node itself: aiohttp-jinja2
with autoescape for every template, one small stylesheet, a tiny optional
``ui.js``, no build step.  Every page works without JavaScript.  German is
the default language, English one click away.

Modules
=======

- :mod:`~node.ui.site`: ``setup(app)``, called by ``create_app``; Jinja2,
  ``/static/``, the middlewares, the language switch, the page modules.
- :mod:`~node.ui.security`: what counts as a UI path, local redirect
  targets (``local_path``), and the browser headers (CSP without inline
  script or style, framing only for ``/widget``, Referrer-Policy, nosniff).
- :mod:`~node.ui.i18n`: one flat JSON catalogue per language in
  ``locales/``; ``t(key, **params)``; the ``lang`` cookie.
- :mod:`~node.ui.auth`: server-side sessions behind an HttpOnly,
  SameSite=Strict cookie; ``require_admin``; every ``/admin/...`` page is
  behind a login by default (``admin_gate``).
- :mod:`~node.ui.csrf`: every POST/PUT/PATCH/DELETE on a UI path carries a
  token (the session's, or a signed double-submit one for visitors).
- :mod:`~node.ui.login`: ``/admin/login`` and ``/admin/logout``; failed
  logins limited per user and per IP, in the database (holds across replicas).
- :mod:`~node.ui.passwords`, :mod:`~node.ui.accounts`: scrypt hashes and the
  rules for usernames and passwords (shared by the CLI and the demo).
- :mod:`~node.ui.render`: ``render``, ``redirect`` (with a one-time flash
  message), ``add_admin_nav``, and HTML error pages.
- :mod:`~node.ui.forms`: reading forms, field errors, the confirmation step.
- :mod:`~node.ui.admin_home`: ``/admin/``, the smallest admin page.

Storage is :mod:`node.db.admins` (tables ``admin_users``, ``ui_sessions``,
``login_failures``); the CLI is :mod:`node.cli_admin`.

Adding a page
=============

1. A module ``node/ui/<area>.py`` with handlers and ``setup(app)``, called
   from :func:`node.ui.site.setup`::

       async def sessions_page(request: web.Request) -> web.StreamResponse:
           admin = await require_admin(request)           # node.ui.auth
           rows = ...                                       # via node.db / services
           return await render(request, "admin/sessions.html", {"rows": rows})

       def setup(app: web.Application) -> None:
           app.router.add_get("/admin/sessions", sessions_page)
           add_admin_nav(app, "/admin/sessions", "nav.sessions")

   Anything under ``/admin/`` (except ``/admin/api/``) already requires a
   login; ``require_admin`` returns the :class:`~node.db.admins.UiSession`
   (``username``, ``csrf_token``) and costs nothing extra.
2. A template in ``templates/`` (admin pages in ``templates/admin/``)::

       {% extends "base.html" %}
       {% import "macros.html" as ui with context %}
       {% block title %}{{ t('sessions.title') }}{% endblock %}
       {% block content %}
       <h1>{{ t('sessions.title') }}</h1>
       {{ ui.error_summary(errors) }}
       <form method="post" action="/admin/sessions" novalidate>
         {{ csrf_field() }}
         {{ ui.field('title', 'sessions.field_title', values.title, errors.get('title'),
                     required=true, maxlength=200) }}
         {{ ui.button('form.save') }}
       </form>
       {% endblock %}

   Every user-facing string is ``t('key')`` with the key in *both*
   ``locales/de.json`` and ``locales/en.json`` (a test checks).  Never mark
   untrusted text ``|safe``; partners' titles and descriptions are text.
   No inline ``<script>``, ``style=`` or ``on...=`` (the CSP blocks them and
   a test scans the templates); behaviour goes into ``static/ui.js``.
3. A form handler: the CSRF token is already checked when it runs::

       async def create_session(request: web.Request) -> web.StreamResponse:
           await require_admin(request)
           form = await read_form(request)                  # node.ui.forms
           errors = required(form, "title")                 # {"title": Message(...)}
           if errors:
               return await render(request, "admin/sessions.html",
                                   {"values": form, "errors": errors}, status=400)
           ...
           return redirect(request, "/admin/sessions", flash=("success", "sessions.created"))

   Field errors are :class:`~node.ui.i18n.Message` objects (a key plus
   parameters) so the page shows them in the visitor's language next to the
   field, with the input kept (passwords excepted).  Errors from services
   map onto fields the same way.
4. Something that cannot be undone gets a confirmation step that works
   without JavaScript: ``GET /admin/x/{id}/delete`` renders
   ``ui.confirm(action, question_key, confirm_key, cancel_href)``; the POST
   acts only if ``confirmed(form)``, else it renders that page.
5. From JavaScript, send the token as ``X-CSRF-Token``
   (``OpenSeats.csrfHeaders()`` reads it from the admin pages' meta tag).
6. Raise :class:`~node.ui.errors.PageError` (``404``, ``"key"``) or any
   ``web.HTTPException`` for an error page in the visitor's language.

Widget pages live under ``/widget``: only there may the origins in the
``widget_frame_ancestors`` setting frame the node.  The visitor CSRF cookie
is SameSite=Strict and is not sent inside a cross-site frame, so a widget
form should open its target in a new top-level page.
"""
