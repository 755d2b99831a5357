"""The policy a teacher's action is checked against: the one the gateway enforces (or one named).

A gateway keeps every policy it loads in `<state>/last-good/` (classgate.proxy.last_good), so the CLI
and the console check groups, caps and locks against what is in force without being told the files.
"""

from __future__ import annotations

from pathlib import Path

from classgate.policies import Policy, load_policy
from classgate.proxy.last_good import LastGood


class NoPolicyError(Exception):
    """No policy to check teachers' actions against: says how to give one."""


def enforced_policy(state_dir: Path, policy_path: Path | None = None, overlay_path: Path | None = None) -> Policy:
    """`policy_path` (+ overlay) compiled, else the gateway's last good policy; raises PolicyError for a named
    policy that does not validate, NoPolicyError when there is none."""
    if policy_path is not None:
        return load_policy(policy_path, overlay_path, cache_dir=state_dir / "compiled")
    kept = LastGood(state_dir).load()
    if kept is None:
        raise NoPolicyError(f"no policy found in {state_dir}: start the gateway once with --state-dir {state_dir}, "
                            "or give --policy (and --overlay) here")
    return kept[0]
