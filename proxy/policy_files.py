"""The files a policy is read from, and what they were when it was read: the baseline its file watcher and a
starting worker compare with.

A snapshot taken when a watcher starts, rather than when the files were read, misses an edit made in between
(a worker still loading while the admin saves, seconds at a gateway's start): that process would enforce
the old policy until the next edit. `as_loaded` keeps the policy and overlay files as they were *before*
they were read, so such an edit shows as a change and is reloaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from classgate.policies import Policy
from classgate.policies.index.build import included_list_files

Snapshot = tuple[tuple[str, int, int], ...]  # (path, mtime_ns, size) per file


def policy_files(policy_path: Path | None, overlay_path: Path | None, policy: Policy | None) -> list[Path]:
    """The policy file, the overlay and every list file `policy` was compiled from."""
    paths: list[Path] = [p for p in (policy_path, overlay_path) if p is not None]
    doc = getattr(policy, "document", None)
    if doc is not None:
        paths.extend(doc.files)
        paths.extend(included_list_files(doc, missing="keep"))
    return list(dict.fromkeys(paths))


def snapshot(paths: Iterable[Path]) -> Snapshot:
    """(path, mtime_ns, size) of each file; a missing file counts as a change too."""
    out = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append((str(p), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(p), -1, -1))
    return tuple(out)


def as_loaded(before_reading: Snapshot, after_loading: Snapshot) -> Snapshot:
    """The files after the load, with those also taken before they were read (policy, overlay) as they were
    then: an edit during the load differs from the baseline."""
    before = {entry[0]: entry for entry in before_reading}
    return tuple(before.get(entry[0], entry) for entry in after_loading)
