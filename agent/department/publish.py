"""Publishing a bundle: the policy file plus every list it references, one TUF target per file.

The files are first copied into a staging folder and the policy is validated *there*, from the copies that
will be published, so a file edited during the publish cannot slip in unvalidated. The gateway sees the
same layout (paths relative to the policy file's folder) and validates it again with its overlay.

Target names: `policy/<path relative to the policy's folder>` for each file, plus `bundle.json`, the small
manifest the gateway reads first (format, bundle version, policy file name, file list). An unchanged list
keeps its name and hash, so a gateway that has it does not download it again.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tuf.api.metadata import TargetFile

from classgate.agent.department.errors import DepartmentError
from classgate.agent.department.repository import Repository, utcnow
from classgate.agent.sync.verify import (  # one definition of the format
    FILE_PREFIX,
    MANIFEST_FORMAT,
    MANIFEST_TARGET,
)
from classgate.policies.atomicfile import atomic_write


@dataclass(frozen=True)
class PublishResult:
    version: int
    files: int
    total_bytes: int
    new_files: int  # files whose content was not already in the repository
    new_bytes: int
    warnings: tuple[str, ...] = ()


def bundle_files(policy_path: Path) -> dict[str, Path]:
    """{path relative to the policy's folder: absolute path} of the policy and every list it uses.

    Raises PolicyError (from the policy reader) or DepartmentError (a list outside the policy's folder).
    """
    from classgate.policies.document import read_document  # the policy package is only needed to publish
    from classgate.policies.index.build import included_list_files  # exactly the files a compile reads

    policy_path = policy_path.resolve()
    base = policy_path.parent
    doc = read_document(policy_path)
    try:
        wanted: set[Path] = {policy_path, *included_list_files(doc)}
    except (KeyError, FileNotFoundError) as e:  # the reader already refused unknown sources; be safe anyway
        raise DepartmentError(str(e).strip("'\"")) from None
    outside = sorted(str(p) for p in wanted if not p.resolve().is_relative_to(base))
    if outside:
        raise DepartmentError(
            "every list must live in the policy's folder or below it, so gateways find it at the same "
            f"relative path; outside {base}:", outside)
    return {p.resolve().relative_to(base).as_posix(): p.resolve() for p in sorted(wanted)}


def _validate(policy_path: Path) -> list[str]:
    """Compile the policy as a gateway would; PolicyError -> DepartmentError with every problem."""
    from classgate.policies import PolicyError, load_policy

    with tempfile.TemporaryDirectory(prefix="classgate-validate-") as cache:
        try:
            policy = load_policy(policy_path, cache_dir=Path(cache))
        except PolicyError as e:
            raise DepartmentError("the policy does not validate; nothing was published",
                                  [str(p) for p in e.problems]) from None
    return [str(w) for w in policy.warnings]


def publish(repo: Repository, policy_path: Path, now: dt.datetime | None = None, comment: str = "") -> PublishResult:
    """Validate, then publish the policy and its lists as the next bundle version."""
    from classgate.policies import PolicyError

    now = now or utcnow()
    try:
        files = bundle_files(policy_path)
    except PolicyError as e:
        raise DepartmentError("the policy does not validate; nothing was published",
                              [str(p) for p in e.problems]) from None
    with tempfile.TemporaryDirectory(prefix="classgate-publish-") as staging_dir:
        staging = Path(staging_dir)
        for rel, src in files.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, staging / rel)
        staged_policy = staging / files_key(files, policy_path)
        warnings = _validate(staged_policy)
        try:
            if set(bundle_files(staged_policy)) != set(files):
                raise DepartmentError("the policy's files changed during the publish; try again")
        except PolicyError as e:
            raise DepartmentError("the policy changed during the publish", [str(p) for p in e.problems]) from None
        with repo.locked():
            return _sign_bundle(repo, staging, sorted(files), staged_policy.name, now, comment, tuple(warnings))


def files_key(files: dict[str, Path], policy_path: Path) -> str:
    resolved = policy_path.resolve()
    return next(rel for rel, path in files.items() if path == resolved)


def _sign_bundle(repo: Repository, staging: Path, rels: list[str], policy_rel: str, now: dt.datetime,
                 comment: str, warnings: tuple[str, ...]) -> PublishResult:
    root = repo.root().signed
    signers = repo.signers("targets", root)
    repo.signers("snapshot", root), repo.signers("timestamp", root)  # every key present before any write
    targets_md = repo.load("targets")
    version = targets_md.signed.version + 1
    new_targets: dict[str, TargetFile] = {}
    total = new_files = new_bytes = 0
    for rel in rels:
        data = (staging / rel).read_bytes()
        name = FILE_PREFIX + rel
        info = TargetFile.from_data(name, data, ["sha256"])
        new_targets[name] = info
        total += len(data)
        if _store_target(repo, name, info, data):
            new_files += 1
            new_bytes += len(data)
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": version,
        "policy": policy_rel,
        "files": rels,
        "published": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "comment": comment,
    }
    manifest_bytes = json.dumps(manifest, indent=1, sort_keys=True).encode()
    info = TargetFile.from_data(MANIFEST_TARGET, manifest_bytes, ["sha256"])
    new_targets[MANIFEST_TARGET] = info
    _store_target(repo, MANIFEST_TARGET, info, manifest_bytes)

    targets_md.signed.targets = new_targets
    targets_md.signed.version = version
    targets_md.signed.expires = repo.expires("targets", now)
    repo.write(targets_md, signers)
    repo.sign_snapshot_and_timestamp(now, new_snapshot=True)
    return PublishResult(version, len(rels), total, new_files, new_bytes, warnings)


def _store_target(repo: Repository, name: str, info: TargetFile, data: bytes) -> bool:
    """Write `<dir>/<sha256>.<basename>` unless already there; True when it was new."""
    directory, _, basename = name.rpartition("/")
    path = repo.targets_dir / directory / f"{info.hashes['sha256']}.{basename}"
    if path.exists():
        return False
    atomic_write(path, data)
    return True
