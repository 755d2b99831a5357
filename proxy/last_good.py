"""The last policy that compiled, kept in the state dir so that a gateway always starts.

After a reboot in transparent mode every device's web traffic goes to the proxy: a gateway that refuses to
start because someone saved a broken overlay takes the whole school offline. So each policy that loads is
kept here (its YAML files, the folders their relative `path:`s were read from, and its compiled index with
the digest of the lists it holds), and a start whose policy does not validate falls back to it, loudly.

    <state>/last-good/
      policy.yaml  overlay.yaml  index.cgidx  meta.json
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classgate.policies import Policy, PolicyError, load_policy
from classgate.policies.atomicfile import atomic_write
from classgate.policies.engine import CompiledIndex

log = logging.getLogger(__name__)

FOLDER = "last-good"


@dataclass(frozen=True)
class KeptPolicy:
    """What the last good copy says about itself."""

    policy_path: Path  # where the policy was loaded from when it was good
    overlay_path: Path | None
    version: str
    saved_at: float
    source: str  # "file" or "sync"


class LastGood:
    def __init__(self, state_dir: Path) -> None:
        self.folder = Path(state_dir) / FOLDER

    def save(self, policy: Policy, policy_path: Path, overlay_path: Path | None, source: str) -> None:
        """Keep `policy` (just loaded from these files); never raises (a full disk costs the fallback only)."""
        try:
            self._save(policy, policy_path, overlay_path, source)
        except (OSError, ValueError) as e:
            log.warning("cannot keep the policy as the last good one in %s: %s", self.folder, e)

    def _save(self, policy: Policy, policy_path: Path, overlay_path: Path | None, source: str) -> None:
        if policy.index_file is None or not policy.lists_digest:
            return  # compiled without a cache dir: nothing to keep
        meta_file = self.folder / "meta.json"
        try:
            if json.loads(meta_file.read_text())["version"] == policy.version:
                return  # the same policy again (a restart, a reload of unchanged files)
        except (OSError, ValueError, KeyError):
            pass
        self.folder.mkdir(parents=True, exist_ok=True)
        files = policy.document.files  # the policy file and the overlay, as read
        atomic_write(self.folder / "policy.yaml", files[0].read_bytes())
        if overlay_path is not None and len(files) > 1:
            atomic_write(self.folder / "overlay.yaml", files[1].read_bytes())
        else:
            (self.folder / "overlay.yaml").unlink(missing_ok=True)
        index = self.folder / "index.cgidx"
        staged = self.folder / f".index.cgidx.{os.getpid()}.tmp"  # per process: the workers save together
        staged.unlink(missing_ok=True)
        try:
            os.link(policy.index_file, staged)  # the same bytes, no copy (the compiled cache may prune its own)
        except OSError:
            shutil.copyfile(policy.index_file, staged)
        os.replace(staged, index)
        meta = {
            "version": policy.version,
            "lists_digest": policy.lists_digest,
            "policy_path": str(policy_path),
            "overlay_path": str(overlay_path) if overlay_path is not None else None,
            "policy_base": str(files[0].parent),
            "overlay_base": str(files[1].parent) if len(files) > 1 else None,
            "saved_at": time.time(),
            "source": source,
        }
        atomic_write(meta_file, (json.dumps(meta, indent=2) + "\n").encode())

    def load(self) -> tuple[Policy, KeptPolicy] | None:
        """The last good policy, compiled from what was kept; None when there is none or it cannot be used."""
        try:
            meta: dict[str, Any] = json.loads((self.folder / "meta.json").read_text())
        except (OSError, ValueError):
            return None
        overlay = self.folder / "overlay.yaml" if meta.get("overlay_path") else None
        try:
            policy = load_policy(
                self.folder / "policy.yaml", overlay,
                base=Path(meta["policy_base"]),
                overlay_base=Path(meta["overlay_base"]) if meta.get("overlay_base") else None,
                compiled=CompiledIndex(self.folder / "index.cgidx", str(meta["lists_digest"])),
            )
        except (PolicyError, OSError, KeyError, TypeError) as e:
            log.error("the last good policy in %s cannot be used either: %s", self.folder, e)
            return None
        kept = KeptPolicy(Path(meta["policy_path"]), Path(meta["overlay_path"]) if meta.get("overlay_path") else None,
                          str(meta.get("version", policy.version)), float(meta.get("saved_at", 0.0)),
                          str(meta.get("source", "file")))
        return policy, kept
