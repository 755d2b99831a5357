"""Fetching subscribed lists: download, check, compare, replace, one list at a time.

For each list (agent/department/subscriptions.py says which and from where):
  1. a conditional GET per file, with the validators of the last fetch (agent/department/fetchstate.py);
     `304 Not Modified` everywhere: unchanged, nothing else happens;
  2. the new copy is staged in a temporary folder beside the list (a ut1 archive is unpacked there with the
     checks of agent/department/ut1.py) and read with the gateway's own reader;
  3. it is refused, and the old list kept, when it is not a list of its format (policies/lists/check.py), when
     it comes back empty, or when it would shrink the list by more than `max_shrink` (20%): an upstream broken
     for a day must not unblock a category in every school. `force` accepts an empty or much smaller list,
     never one that is not of its format;
  4. accepted, it replaces the old one by rename (the file atomically, a ut1 list's folder with two renames),
     then its state is written; what changed is counted in distinct entries (+added / -removed).
Every download is bounded by the sync agent's limits (timeouts, deadline, size cap, no redirects). A failure or
a refusal of one list does not stop the others.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tuf.api import exceptions

from classgate.agent.department.conditional import ConditionalFetcher, Response, Validators
from classgate.agent.department.errors import DepartmentError
from classgate.agent.department.fetchstate import DownloadState, ListState, load_state, sha256_of, state_path
from classgate.agent.department.subscriptions import Subscription
from classgate.agent.department.ut1 import Caps, swap_in, unpack
from classgate.agent.sync.transport import Limits
from classgate.policies.atomicfile import atomic_write
from classgate.policies.lists import read_list
from classgate.policies.lists.check import DEFAULT_MAX_JUNK_SHARE, check_list
from classgate.policies.lists.read import UT1_FILES
from classgate.policies.model import Source

Status = Literal["updated", "unchanged", "refused", "failed"]


@dataclass(frozen=True)
class FetchSettings:
    max_shrink: float = 0.20  # refuse a list that loses more than this share of its entries
    max_junk_share: float = DEFAULT_MAX_JUNK_SHARE
    force: bool = False  # accept an empty or much smaller list (never one that is not of its format)
    file_bytes: int = 64 * 1024 * 1024  # one list file (hostsVN's largest is 1.3 MB)
    limits: Limits = field(default_factory=Limits)  # timeouts and the deadline of each download
    ut1: Caps = field(default_factory=Caps)  # archive, member and unpacked sizes of a UT1 archive


@dataclass(frozen=True)
class Outcome:
    """What became of one list."""

    label: str
    status: Status
    entries: int = 0  # distinct entries of the list now on disk (after an update: the new one)
    added: int = 0
    removed: int = 0
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("updated", "unchanged")


def fetch_lists(subscriptions: list[Subscription], settings: FetchSettings = FetchSettings(),
                fetcher: ConditionalFetcher | None = None) -> list[Outcome]:
    """Fetch every list in order; one Outcome each (never raises for a list's own failure)."""
    if fetcher is None:
        cap = max(settings.file_bytes, settings.ut1.archive_bytes, settings.ut1.file_bytes)
        fetcher = ConditionalFetcher(dataclasses.replace(settings.limits, max_bytes=cap))
    return [fetch_list(sub, settings, fetcher) for sub in subscriptions]


def fetch_list(sub: Subscription, settings: FetchSettings, fetcher: ConditionalFetcher) -> Outcome:
    try:
        return _fetch(sub, settings, fetcher)
    except exceptions.DownloadError as e:
        return Outcome(sub.label, "failed", message=f"download failed: {e}; the old list is kept")
    except DepartmentError as e:
        return Outcome(sub.label, "failed", message=f"{e}; the old list is kept")
    except OSError as e:
        return Outcome(sub.label, "failed", message=f"{e.filename or sub.target}: {e.strerror or e}")


def _fetch(sub: Subscription, settings: FetchSettings, fetcher: ConditionalFetcher) -> Outcome:
    folder = sub.kind != "file"
    target = sub.target
    target.parent.mkdir(parents=True, exist_ok=True)
    current = _content_files(target, folder)
    current_sha = sha256_of(current)
    state = load_state(state_path(target, folder))
    trusted = state if state is not None and current and state.content == current_sha else None
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.", dir=target.parent) as work_dir:
        work = Path(work_dir)
        answers: dict[str, Response] = {}
        for download in sub.downloads:
            validators = trusted.validators(download.name, download.url) if trusted else Validators()
            with open(work / download.name, "wb") as out:
                answers[download.name] = fetcher.get_if_changed(download.url, validators, out,
                                                                _cap(sub, settings), download.missing_ok)
        if all(a.answer == "not_modified" for a in answers.values()):
            return Outcome(sub.label, "unchanged", entries=trusted.entries if trusted else 0,
                           message="not modified")
        staged = _stage(sub, work, answers, current, settings)
        new_files = _content_files(staged, folder)
        new_state = _state(sub, answers, trusted, sha256_of(new_files))
        if new_state.content == current_sha:  # the same bytes again (a server without validators)
            entries = trusted.entries if trusted else len(_entries(sub, target))
            atomic_write(state_path(target, folder), dataclasses.replace(new_state, entries=entries).to_bytes())
            return Outcome(sub.label, "unchanged", entries=entries, message="same content")
        return _check_and_install(sub, staged, current, new_state, settings)


def _check_and_install(sub: Subscription, staged: Path, current: dict[str, Path], new_state: ListState,
                       settings: FetchSettings) -> Outcome:
    folder = sub.kind != "file"
    new_data = read_list(_as_source(sub, staged), sub.list_name)
    check = check_list(new_data, sub.source.format, settings.max_junk_share)
    if check.problem == "format":
        return _refused(sub, f"{check.message}; the old list is kept (change `format:` if the upstream "
                             "changed its format)")
    new = set(new_data.domains) | set(new_data.urls)
    old = _entries(sub, sub.target) if current else set()
    if not settings.force:
        if check.problem == "empty":
            return _refused(sub, f"came back empty (it has {len(old)} entries now); the old list is kept "
                                 "(--force accepts it)")
        shrink = (len(old) - len(new)) / len(old) if old else 0.0
        if shrink > settings.max_shrink:
            return _refused(sub, f"would shrink from {len(old)} to {len(new)} entries (-{shrink:.0%}, the limit "
                                 f"is {settings.max_shrink:.0%}); the old list is kept (--force accepts it)",
                            entries=len(old))
    new_state = dataclasses.replace(new_state, entries=len(new))
    if folder:
        atomic_write(state_path(staged, True), new_state.to_bytes())
        swap_in(staged, sub.target)
    else:
        atomic_write(sub.target, staged.read_bytes())
        atomic_write(state_path(sub.target, False), new_state.to_bytes())
    return Outcome(sub.label, "updated", entries=len(new), added=len(new - old), removed=len(old - new))


def _stage(sub: Subscription, work: Path, answers: dict[str, Response], current: dict[str, Path],
           settings: FetchSettings) -> Path:
    """The new copy, complete, in `work`: the file, or the list's folder."""
    if sub.kind == "file":
        return work / sub.downloads[0].name
    assert sub.list_name is not None
    if sub.kind == "ut1_archive":
        unpack(work / sub.downloads[0].name, work / "unpacked", sub.list_name, settings.ut1)
        return work / "unpacked" / sub.list_name
    staged = work / "unpacked" / sub.list_name
    staged.mkdir(parents=True)
    for name, answer in answers.items():
        if answer.answer == "modified":
            (work / name).replace(staged / name)
        elif answer.answer == "not_modified" and name in current:
            shutil.copyfile(current[name], staged / name)
    if not any((staged / f).is_file() for f in UT1_FILES):
        raise DepartmentError(f"neither {' nor '.join(UT1_FILES)} at {sub.downloads[0].url.rsplit('/', 1)[0]}/")
    return staged


def _content_files(target: Path, folder: bool) -> dict[str, Path]:
    """The files that make the list (what a gateway reads), by name; {} when there is no list yet."""
    if folder:
        return {f: target / f for f in UT1_FILES if (target / f).is_file()}
    return {target.name: target} if target.is_file() else {}


def _as_source(sub: Subscription, where: Path) -> Source:
    """The subscription's source as if it were at `where` (the staged copy or the list in place)."""
    path = where.parent if sub.list_name is not None else where
    return Source(name=sub.source.name, format=sub.source.format, path=path)


def _state(sub: Subscription, answers: dict[str, Response], trusted: ListState | None,
           content: dict[str, str]) -> ListState:
    downloads = {}
    for d in sub.downloads:
        answer = answers[d.name]
        validators = answer.validators
        if answer.answer == "not_modified" and trusted is not None:
            validators = trusted.validators(d.name, d.url)
        downloads[d.name] = DownloadState(d.url, validators.etag, validators.last_modified)
    fetched = dt.datetime.now(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ListState(downloads, content, 0, fetched)


def _entries(sub: Subscription, where: Path) -> set[str]:
    """The distinct entries of the list at `where`, as a gateway reads them."""
    data = read_list(_as_source(sub, where), sub.list_name)
    return set(data.domains) | set(data.urls)


def _cap(sub: Subscription, settings: FetchSettings) -> int:
    return {"file": settings.file_bytes, "ut1_archive": settings.ut1.archive_bytes,
            "ut1_files": settings.ut1.file_bytes}[sub.kind]


def _refused(sub: Subscription, message: str, entries: int = 0) -> Outcome:
    return Outcome(sub.label, "refused", entries=entries, message=message)
