"""classgate policies: the policy language and the decision engine (pure Python, no mitmproxy).

    from policies import load_policy, PolicyError
    policy = load_policy("department.yaml", overlay="school.yaml")
    policy.decide("https://example.com/", client="10.10.1.2")

The engine names are imported on first use (PEP 562), so `import policies.canonical` or the CLI's
`--help` do not pay for compiling the engine and its numpy imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from policies.errors import PolicyError, Problem, UrlError

__all__ = ["Decision", "Match", "Policy", "PolicyError", "Problem", "UrlError", "load_policy", "read_document"]

_LAZY = {
    "load_policy": "policies.loader",
    "read_document": "policies.document",
    "Policy": "policies.engine",
    "Decision": "policies.engine",
    "Match": "policies.engine",
}

if TYPE_CHECKING:
    from policies.document import read_document
    from policies.engine import Decision, Match, Policy
    from policies.loader import load_policy


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'policies' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
