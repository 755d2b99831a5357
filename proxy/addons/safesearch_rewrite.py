"""Force SafeSearch on intercepted requests to Google, Bing, DuckDuckGo and YouTube.

Runs after the filter, on allowed requests only, under the same policy the filter used for the
flow. The rewrite happens in `requestheaders`, before anything is sent upstream. Which host is which
engine and what to change is pure policy logic (classgate.policies.search_engines); this applies it.
"""

from __future__ import annotations

import logging
import weakref

from mitmproxy import http

from classgate.policies import search_engines
from classgate.policies.canonical import canonical_url
from classgate.policies.errors import UrlError
from classgate.proxy.blockpage import new_ref
from classgate.proxy.context import FilterContext
from classgate.proxy.responses import can_answer
from classgate.proxy.verdict import record, verdict_of

log = logging.getLogger(__name__)


def apply(request: http.Request, plan: search_engines.Plan) -> bool:
    """Apply `plan` to `request`; True if anything changed."""
    changed = False
    if plan.set_params or plan.remove_params:
        query = request.query
        for name, value in plan.set_params.items():
            if query.get_all(name) != [value]:
                query[name] = value  # replaces every occurrence (a second `safe=off` too)
                changed = True
        for name, value in plan.remove_params.items():
            values = query.get_all(name)
            if value in values:
                query.set_all(name, [v for v in values if v != value])
                changed = True
    for name, value in plan.set_headers.items():
        if request.headers.get(name) != value:
            request.headers[name] = value
            changed = True
    return changed


def canonical_path(request: http.Request) -> str:
    """The request's path as the engine reads it (`//search`, `/%73earch` are /search); "/" if unreadable."""
    try:
        return canonical_url(f"http://x{request.path}").path
    except UrlError:
        return "/"


def apply_form(request: http.Request, plan: search_engines.Plan) -> bool:
    """Apply `plan`'s parameters to an urlencoded form body (a search sent by POST); True if changed."""
    if not plan.form_too or request.method != "POST" or request.raw_content is None:
        return False
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", "").lower():
        return False
    form = request.urlencoded_form
    changed = False
    for name, value in plan.set_params.items():
        if form.get_all(name) != [value]:
            form[name] = value
            changed = True
    return changed


class SafeSearchRewrite:
    def __init__(self, context: FilterContext) -> None:
        self.context = context
        # Searches sent by POST: their form is rewritten once the body is in (the `request` hook).
        self._forms: weakref.WeakKeyDictionary[http.HTTPFlow, search_engines.Plan] = weakref.WeakKeyDictionary()

    def request(self, flow: http.HTTPFlow) -> None:
        plan = self._forms.pop(flow, None)
        if plan is None or flow.response or flow.error or not flow.live:
            return
        apply_form(flow.request, plan)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        verdict = verdict_of(flow)
        if verdict is None or verdict.action != "allow" or not verdict.host:
            return
        if not search_engines.is_engine_host(verdict.host):
            return  # most requests: one set lookup
        policy = self.context.holder.pin(flow)
        try:
            if policy is None:
                raise RuntimeError("no policy is loaded")
            plan = search_engines.plan(verdict.host, canonical_path(flow.request), policy.safe_search)
            if plan is None:
                return
            apply(flow.request, plan)
            # Recorded whether or not the URL already asked for safe mode: the count is of
            # searches the policy enforced on, not of URLs that happened to need a change.
            record(flow, verdict.with_safesearch(plan.engine))
            if plan.form_too and flow.request.method == "POST":
                self._forms[flow] = plan
        except Exception as e:  # noqa: BLE001 - fail closed: any error blocks
            ref = new_ref()
            self.context.failsafe.failed("safesearch", e, ref)
            record(flow, verdict.failing(ref))
            if not can_answer(flow.request):
                flow.kill()  # mitmproxy cannot answer this request; never let it through
            else:
                flow.response = self.context.responder.respond(flow, policy, ref=ref, error=True)
