"""Force SafeSearch on intercepted requests to Google, Bing, DuckDuckGo and YouTube.

Runs after the filter, on allowed requests only, under the same policy the filter used for the
flow. The rewrite happens in `requestheaders`, before anything is sent upstream.
"""

from __future__ import annotations

import logging

from mitmproxy import http

from proxy import safesearch
from proxy.blockpage import new_ref
from proxy.failsafe import FailSafe
from proxy.policy_holder import PolicyHolder
from proxy.responses import block_response

log = logging.getLogger(__name__)


def apply(request: http.Request, plan: safesearch.Plan) -> bool:
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


class SafeSearch:
    def __init__(self, holder: PolicyHolder, failsafe: FailSafe) -> None:
        self.holder = holder
        self.failsafe = failsafe

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        meta = flow.metadata.get("classgate")
        if meta is None or meta.get("action") != "allow":
            return
        try:
            policy = self.holder.pin(flow)
            host = meta.get("host") or ""
            if not host:
                return
            plan = safesearch.plan(host, flow.request.path, policy.safe_search)
            if plan is None:
                return
            apply(flow.request, plan)
            # Recorded whether or not the URL already asked for safe mode: the count is of
            # searches the policy enforced on, not of URLs that happened to need a change.
            meta["safesearch"] = plan.engine
        except Exception as e:  # noqa: BLE001 - fail closed: any error blocks
            ref = new_ref()
            self.failsafe.failed("safesearch", e, ref)
            meta.update(action="block", tier="error", error=True, ref=ref)
            if flow.request.stream:
                flow.kill()  # mitmproxy cannot answer a streamed request; never let it through
            else:
                flow.response = block_response(flow, self.holder.pin(flow), ref=ref, error=True)
