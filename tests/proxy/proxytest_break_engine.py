"""TEST-ONLY mitmproxy script: make the policy engine raise on every decision, inside the real proxy.

Proves fail-closed end to end: the proxy must answer with the "filter error" page, never pass.
"""

from classgate.policies.engine import Policy


def _explode(self, *args, **kwargs):
    raise RuntimeError("test: the engine is broken")


Policy.decide = _explode
Policy.decide_host = _explode
