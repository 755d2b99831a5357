"""The teacher's page: their groups, the four class actions, and what is in force with "end now".

Every action goes through classgate.agent.teachers.classroom.Classroom, which checks the account's groups,
the policy's cap and the Department's locks, and writes the audit log; a refusal's sentence is shown on the
form as it is. After a change the browser is sent back to the page (POST, redirect, GET), so reloading the
page never repeats an action.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Final

from flask import Blueprint, g, redirect, request

from classgate.agent.console.app import console, page
from classgate.agent.console.auth import signed_in
from classgate.agent.teachers.accounts import Account
from classgate.agent.teachers.audit import AuditError
from classgate.agent.teachers.classroom import ActionRefused, Actor, Classroom
from classgate.agent.teachers.enforced import NoPolicyError
from classgate.policies.class_actions import ClassAction
from classgate.policies.teacher_settings import format_duration, parse_duration
from classgate.policies.vocabulary import CLASS_ACTION_KINDS
from classgate.proxy.ask_code import AskRequest, normalise, shared_ask_table
from classgate.proxy.class_store import ClassStoreError

blueprint = Blueprint("classes", __name__)
DURATIONS: Final = tuple(dt.timedelta(minutes=m) for m in (10, 15, 30, 45, 60, 90, 120, 180, 240))


def _actor() -> Actor:
    account: Account = g.account
    return Actor.of(account)


def durations(cap: dt.timedelta) -> list[str]:
    """The choices of the duration menu: the usual ones within the policy's cap, and the cap itself."""
    return list(dict.fromkeys([*(format_duration(d) for d in DURATIONS if d <= cap), format_duration(cap)]))


def shown_action(room: Classroom, action: ClassAction) -> dict[str, Any]:
    return {"id": action.id, "kind": action.kind, "group": action.group, "sites": action.sites, "by": action.by,
            "until": f"{room.local_time(action.until):%H:%M %d/%m}"}


def dashboard(status: int = 200, **context: Any) -> Any:
    try:
        room = console().classroom()
    except NoPolicyError as exc:
        return page("message.html", 503, heading="refused", text=str(exc))
    actor = _actor()
    cap = room.policy.document.teachers.max_duration
    active = [shown_action(room, a) for a in room.active(actor)]
    form = {"kind": request.args.get("kind", "allow"), "group": request.args.get("group", ""),
            "sites": request.args.get("site", ""), "duration": ""}
    code_text = request.args.get("code", "")[:32]
    code_unknown = False
    if code_text:
        asked = _asked(code_text)
        if asked is not None:
            form.update(kind="allow", group=asked.group, sites=asked.domain)
        code_unknown = asked is None
    context.setdefault("form", form)
    notice = None
    if started := request.args.get("started"):
        notice = next((a for a in active if a["id"] == started), None)
    return page("classes.html", status, groups=room.groups_of(actor), active=active, kinds=CLASS_ACTION_KINDS,
                durations=durations(cap), cap=format_duration(cap), started=notice, code=code_text,
                code_unknown=code_unknown,
                ended=_action_id(request.args.get("ended", "")), **context)


def _asked(text: str) -> AskRequest | None:
    """What a student's "ask your teacher" code stands for (the block page showed it; the gateway's workers keep
    the codes in a table in RAM that this process reads): None when it is no code, or not known (any more)."""
    code = normalise(text)
    if code is None:
        return None
    table = shared_ask_table(console().settings.state_dir, create=False)
    if table is None:
        return None
    try:
        return table.get(code)
    finally:
        table.close()


def _action_id(text: str) -> str:
    """An action id from the query (what `end` redirects with), or "": a link cannot put other words here."""
    return text if re.fullmatch(r"[0-9a-f]{8}", text) else ""


@blueprint.get("/")
@signed_in
def home() -> Any:
    return dashboard()


@blueprint.post("/actions")
@signed_in
def start_action() -> Any:
    kind = request.form.get("kind", "")
    group = request.form.get("group", "")
    sites_text = request.form.get("sites", "")
    duration_text = request.form.get("duration", "")
    form = {"kind": kind, "group": group, "sites": sites_text, "duration": duration_text}
    sites = [s for s in sites_text.replace(",", "\n").split() if s] if kind != "pause" else []
    try:
        duration = parse_duration(duration_text) if duration_text else None
        if kind not in CLASS_ACTION_KINDS:
            raise ActionRefused(f"unknown class action {kind!r}")
        room = console().classroom()
        action = room.start(_actor(), kind, group, sites, duration)
    except (ValueError, ActionRefused, AuditError, ClassStoreError, NoPolicyError) as exc:
        return dashboard(400, refusal=str(exc), form=form)
    return redirect(f"/?started={action.id}", 303)


@blueprint.post("/actions/<action_id>/end")
@signed_in
def end_action(action_id: str) -> Any:
    try:
        ended = console().classroom().end(_actor(), action_id)
    except (ActionRefused, AuditError, ClassStoreError, NoPolicyError) as exc:
        return dashboard(400, refusal=str(exc))
    return redirect(f"/?ended={ended.id}", 303)
