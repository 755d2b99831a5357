"""Signing in and out, the first-sign-in password, and the language switch."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, g, redirect, request
from werkzeug.wrappers import Response as WerkzeugResponse

from classgate.agent.console.app import console, current_session, page, use_session
from classgate.agent.console.sessions import Session
from classgate.agent.console.words import LANGUAGES
from classgate.agent.teachers.accounts import Account, AccountError

blueprint = Blueprint("auth", __name__)
F = TypeVar("F", bound=Callable[..., Any])
MAX_FIELD = 256  # a name, a password, a code: longer is no sign-in, and scrypt is not fed megabytes


def signed_in(view: F) -> F:
    """The view needs a signed-in account that has chosen its own password."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        account: Account | None = g.get("account")
        if account is None:
            return redirect("/login", 303)
        if account.must_change_password:
            return redirect("/password", 303)
        return view(*args, **kwargs)

    return cast(F, wrapper)


def _anonymous_session() -> Session:
    session = current_session()
    if session is None:
        session = console().sessions.new()
        use_session(session)
    return session


@blueprint.get("/login")
def login_form() -> Any:
    if g.get("account") is not None:
        return redirect("/", 303)
    _anonymous_session()
    return page("login.html")


@blueprint.post("/login")
def login() -> Any:
    state = console()
    session = current_session()
    assert session is not None  # the CSRF check needs one
    name = request.form.get("name", "").strip()[:MAX_FIELD]
    password = request.form.get("password", "")[:MAX_FIELD]
    code = request.form.get("code", "").strip()[:MAX_FIELD] or None
    address = request.remote_addr or "?"
    minutes = state.throttle.locked_minutes(name, address)
    if minutes:
        return page("login.html", 429, error="locked", minutes=minutes, name=name)
    try:
        account = state.accounts.verify(name, password, code)
    except AccountError:
        account = None
    if account is None:
        state.throttle.failed(name, address)
        return page("login.html", 401, error="wrong", name=name)
    state.throttle.succeeded(name, address)
    use_session(state.sessions.sign_in(session, account.name))
    g.account = account
    return redirect("/password" if account.must_change_password else "/", 303)


@blueprint.post("/logout")
def logout() -> WerkzeugResponse:
    session = current_session()
    if session is not None:
        console().sessions.end(session)
    use_session(None)
    return redirect("/login", 303)


@blueprint.get("/password")
def password_form() -> Any:
    if g.get("account") is None:
        return redirect("/login", 303)
    return page("password.html")


@blueprint.post("/password")
def change_password() -> Any:
    account: Account | None = g.get("account")
    session = current_session()
    if account is None or session is None:
        return redirect("/login", 303)
    new, repeat = request.form.get("password", "")[:MAX_FIELD], request.form.get("repeat", "")[:MAX_FIELD]
    if new != repeat:
        return page("password.html", 400, error_key="password_mismatch")
    state = console()
    try:
        g.account = state.accounts.set_password(account.name, new)
    except AccountError as exc:
        return page("password.html", 400, error_text=str(exc))
    state.sessions.end_account(account.name)  # every other device signed in with the old password
    use_session(state.sessions.sign_in(session, account.name))
    return redirect("/", 303)


@blueprint.post("/lang")
def switch_language() -> WerkzeugResponse:
    session = current_session()
    lang = request.form.get("lang", "vi")
    if session is not None and lang in LANGUAGES:
        use_session(console().sessions.set_lang(session, lang))
    back = request.form.get("next", "/")
    # Only a path of this console: never an open redirect to another site.
    return redirect(back if back.startswith("/") and not back.startswith("//") and "\\" not in back else "/", 303)
