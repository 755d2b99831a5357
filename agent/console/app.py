"""The console's Flask app: the application factory, and what every request goes through, in order.

1. LAN only: a client outside loopback, the private ranges and the policy's groups gets 403 (lan.py).
2. The session from its cookie (sessions.py), or none.
3. Every POST carries its session's CSRF token, or gets 403 before any view runs; GET never changes state.
4. The view (auth.py, classes.py, admin.py): Jinja2 templates, autoescaped.
5. The session cookie (HttpOnly, Secure, SameSite=Strict) when it changed, and headers that keep the pages
   out of caches, frames and other origins (no script runs on any page: the CSP says so).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from flask import Flask, Response, g, render_template, request

from classgate.agent.console.sessions import Session, csrf_ok
from classgate.agent.console.settings import ConsoleSettings
from classgate.agent.console.state import ConsoleState
from classgate.agent.console.words import words

COOKIE: Final = "classgate_console"
TEMPLATES: Final = Path(__file__).parent / "templates"
MAX_FORM_BYTES: Final = 64 * 1024  # a lesson's list of sites is far less
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self';"
                               " frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Strict-Transport-Security": "max-age=31536000",
    "X-Frame-Options": "DENY",
}


def create_app(settings: ConsoleSettings, *, clock: Callable[[], float] = time.time,
               monotonic: Callable[[], float] = time.monotonic) -> Flask:
    from classgate.agent.console import admin, auth, classes

    app = Flask(__name__, template_folder=str(TEMPLATES), static_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=MAX_FORM_BYTES, MAX_FORM_MEMORY_SIZE=MAX_FORM_BYTES)
    app.jinja_env.autoescape = True  # every template, whatever its file name
    app.extensions["classgate_console"] = ConsoleState.build(settings, clock=clock, monotonic=monotonic)
    app.before_request(_lan_only)
    app.before_request(_load_session)
    app.before_request(_check_csrf)
    app.after_request(_finish)
    app.register_blueprint(auth.blueprint)
    app.register_blueprint(classes.blueprint)
    app.register_blueprint(admin.blueprint)
    app.register_error_handler(404, lambda _: page("message.html", 404, heading="not_found"))
    app.register_error_handler(405, lambda _: page("message.html", 405, heading="not_found"))
    return app


def console() -> ConsoleState:
    from flask import current_app

    state: ConsoleState = current_app.extensions["classgate_console"]
    return state


def current_session() -> Session | None:
    session: Session | None = g.get("session")
    return session


def use_session(session: Session | None) -> None:
    """Make `session` the request's, and send its cookie (or clear it for None)."""
    g.session = session
    g.cookie_changed = True


def page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    """A page in the session's language, with what every template needs (words, CSRF token, account)."""
    session = current_session()
    lang = session.lang if session is not None else "vi"
    # Where the language switch comes back to: this page, or for a form's answer the page of that form.
    back = request.path if request.method == "GET" else "/admin" if request.blueprint == "admin" else "/"
    return render_template(template, t=words(lang), lang=lang, csrf=session.csrf if session else "",
                           account=g.get("account"), path=back, **context), status


def _lan_only() -> tuple[str, int] | None:
    if not console().lan.allows(request.remote_addr):
        g.session = None
        return page("message.html", 403, heading="forbidden", message="forbidden_lan")
    return None


def _load_session() -> None:
    g.session = console().sessions.get(request.cookies.get(COOKIE))
    g.account = None
    session = current_session()
    if session is not None and session.account is not None:
        g.account = console().accounts.get(session.account)
        if g.account is None:  # the account was removed: signed out at once
            console().sessions.end(session)
            use_session(None)


def _check_csrf() -> tuple[str, int] | None:
    if request.method != "POST":
        return None
    if not csrf_ok(current_session(), request.form.get("csrf")):
        return page("message.html", 403, heading="forbidden", message="bad_form", back=True)
    return None


def _finish(response: Response) -> Response:
    if g.get("cookie_changed"):
        session = current_session()
        if session is None:
            response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
        else:
            # No Max-Age: the browser forgets it when closed; the server ends it when idle or old anyway.
            response.set_cookie(COOKIE, session.id, path="/", secure=True, httponly=True, samesite="Strict")
    response.headers.update(SECURITY_HEADERS)
    return response
