"""Force SafeSearch on intercepted requests to Google, Bing, DuckDuckGo and YouTube.

Runs after the filter, on allowed requests only, under the same policy the filter used for the
flow. The rewrite happens in `requestheaders`, before anything is sent upstream. Which host is which
engine and what to change is pure policy logic (classgate.policies.search_engines); this applies it.
"""

from __future__ import annotations

import logging

from mitmproxy import http

from classgate.policies import search_engines
from classgate.proxy.blockpage import new_ref
from classgate.proxy.context import FilterContext
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


class SafeSearchRewrite:
    def __init__(self, context: FilterContext) -> None:
        self.context = context

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        verdict = verdict_of(flow)
        if verdict is None or verdict.action != "allow" or not verdict.host:
            return
        policy = self.context.holder.pin(flow)
        try:
            if policy is None:
                raise RuntimeError("no policy is loaded")
            plan = search_engines.plan(verdict.host, flow.request.path, policy.safe_search)
            if plan is None:
                return
            apply(flow.request, plan)
            # Recorded whether or not the URL already asked for safe mode: the count is of
            # searches the policy enforced on, not of URLs that happened to need a change.
            record(flow, verdict.with_safesearch(plan.engine))
        except Exception as e:  # noqa: BLE001 - fail closed: any error blocks
            ref = new_ref()
            self.context.failsafe.failed("safesearch", e, ref)
            record(flow, verdict.failing(ref))
            if flow.request.stream:
                flow.kill()  # mitmproxy cannot answer a streamed request; never let it through
            else:
                flow.response = self.context.responder.respond(flow, policy, ref=ref, error=True)
