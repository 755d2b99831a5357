"""After a fetch: publish the policy again only when a file of its bundle differs from the published bundle.

"Changed" is measured against the newest published bundle, not against the last fetch: when a publish
fails (the targets key not mounted, a policy that does not validate), the next run publishes what is still
waiting, even though its fetch finds nothing new upstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from classgate.agent.department.errors import DepartmentError
from classgate.agent.department.fetchstate import sha256_of
from classgate.agent.department.publish import PublishResult, bundle_files, publish
from classgate.agent.department.repository import Repository
from classgate.agent.sync.verify import FILE_PREFIX
from classgate.policies.errors import PolicyError


@dataclass(frozen=True)
class Pending:
    """What differs between the policy folder and the newest published bundle."""

    changed: tuple[str, ...]  # paths relative to the policy's folder: new, changed or gone
    published_version: int


def pending_changes(repo: Repository, policy_path: Path) -> Pending:
    """Compare each file of the bundle the policy makes now with the newest published one (by SHA-256)."""
    try:
        files = bundle_files(policy_path)
    except PolicyError as e:
        raise DepartmentError("the policy does not validate; nothing was published",
                              [str(p) for p in e.problems]) from None
    targets = repo.load("targets").signed
    published = {name.removeprefix(FILE_PREFIX): info.hashes.get("sha256")
                 for name, info in targets.targets.items() if name.startswith(FILE_PREFIX)}
    now = sha256_of(files)
    changed = sorted(rel for rel in now.keys() | published.keys() if now.get(rel) != published.get(rel))
    return Pending(tuple(changed), targets.version)


def publish_if_changed(repo_dir: Path, policy_path: Path, keys_dir: Path | None = None
                       ) -> tuple[Pending, PublishResult | None]:
    """Validate and publish when something changed; (what changed, the publish or None)."""
    repo = Repository.open(repo_dir, keys_dir)
    pending = pending_changes(repo, policy_path)
    if not pending.changed:
        return pending, None
    return pending, publish(repo, policy_path, comment="lists fetched: " + ", ".join(pending.changed[:20]))
