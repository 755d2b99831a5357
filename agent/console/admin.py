"""The admin's page: the gateway's aggregate usage with charts, its health, and "why is this blocked?"."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable
from functools import wraps
from typing import Any, Final, TypeVar, cast

from flask import Blueprint, g, request

from classgate.agent.console.app import console, page
from classgate.agent.console.auth import signed_in
from classgate.agent.console.charts import bar_chart
from classgate.agent.console.usage import Usage
from classgate.agent.teachers.enforced import NoPolicyError
from classgate.policies import Policy
from classgate.policies.groups import group_path
from classgate.proxy.class_store import FILE as ACTIONS_FILE
from classgate.proxy.class_store import ClassStoreError, read_actions

blueprint = Blueprint("admin", __name__)
F = TypeVar("F", bound=Callable[..., Any])
MAX_URL: Final = 4096


def admin_only(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not g.account.admin:
            return page("message.html", 403, heading="forbidden", message="forbidden_admin")
        return view(*args, **kwargs)

    return signed_in(cast(F, wrapper))


def _admin_page(status: int = 200, **context: Any) -> Any:
    state = console()
    usage = state.usage()
    policy = state.policies.current()
    return page("admin.html", status, usage=usage, charts=_charts(usage), when=_when(policy),
                **context)


def _charts(usage: Usage | None) -> dict[str, Any]:
    if usage is None or usage.error:
        return {}
    return {"category": bar_chart(usage.requests_by_category, usage.blocks_by_category),
            "group": bar_chart(usage.requests_by_group, usage.blocks_by_group)}


def _when(policy: Policy | None) -> Callable[[float | None], str]:
    zone = policy.timezone if policy is not None else dt.UTC

    def when(ts: float | None) -> str:
        return "-" if not ts else f"{dt.datetime.fromtimestamp(ts, zone):%Y-%m-%d %H:%M}"

    return when


@blueprint.get("/admin")
@admin_only
def usage_page() -> Any:
    return _admin_page()


@blueprint.post("/admin/check")
@admin_only
def check() -> Any:
    """What the engine decides for a URL (and a device), with the class actions in force: like `classgate check`."""
    url = request.form.get("url", "").strip()[:MAX_URL]
    client_text = request.form.get("client", "").strip()
    form = {"url": url, "client": client_text}
    client: str | None = None
    if client_text:
        try:
            client = str(ipaddress.ip_address(client_text.strip("[]")))
        except ValueError:
            return _admin_page(400, form=form, check_error_key="check_bad_client")
    try:
        policy = console().policies.require()
        actions = read_actions(console().settings.state_dir / ACTIONS_FILE)
    except (NoPolicyError, ClassStoreError) as exc:
        return _admin_page(503, form=form, check_error=str(exc))
    now = console().clock()
    at = dt.datetime.fromtimestamp(now, policy.timezone)
    decision, action = actions.explain(policy, policy.decide(url, client=client, at=at), now)
    result = {
        "decision": decision,
        "path": " > ".join(reversed(group_path(policy.document.groups, decision.group))),
        "action": action,
        "until": f"{dt.datetime.fromtimestamp(action.until, policy.timezone):%H:%M}" if action else "",
        "at": f"{at:%Y-%m-%d %H:%M} ({policy.timezone.key})",
    }
    return _admin_page(form=form, result=result)
