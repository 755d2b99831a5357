"""classgate policies: the policy language and the decision engine (pure Python, no mitmproxy).

    from classgate.policies import load_policy, PolicyError
    policy = load_policy("department.yaml", overlay="school.yaml")
    policy.decide("https://example.com/", client="10.10.1.2")

The engine names are imported on first use (PEP 562), so `import policies.canonical` or the CLI's
`--help` do not pay for compiling the engine and its numpy imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from classgate.policies.errors import PolicyError, Problem, UrlError

__all__ = ["Decision", "Match", "Policy", "PolicyError", "Problem", "UrlError", "load_policy", "read_document"]

_LAZY = {
    "load_policy": "classgate.policies.loader",
    "read_document": "classgate.policies.document",
    "Policy": "classgate.policies.engine",
    "Decision": "classgate.policies.decision",
    "Match": "classgate.policies.decision",
}

if TYPE_CHECKING:
    from classgate.policies.decision import Decision, Match
    from classgate.policies.document import read_document
    from classgate.policies.engine import Policy
    from classgate.policies.loader import load_policy


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'policies' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
