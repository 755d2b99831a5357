"""What a teacher can do to a class, as one API: the CLI calls it, and the web console's views will.

    room = Classroom(state_dir, policy)              # the policy the gateway enforces (bounds and groups)
    action = room.start(actor, "allow", "students", ["example.com"], duration=timedelta(minutes=45))
    room.active(actor)                               # what `actor` may see and end
    room.end(actor, action.id)

Every call checks the actor's groups (an admin acts on all; a teacher on the groups of the account and
their subgroups), the policy's bounds (`teachers.max_duration`, the Department's locks: policies.class_actions)
and writes the audit log (a refusal too) before it returns. Errors are `ActionRefused` with a sentence for
the teacher, or `AuditError` when the audit log cannot be written (then nothing was done); the CLI turns them
into click errors, the console into a message on the form.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from classgate.agent.teachers.accounts import Account
from classgate.agent.teachers.audit import AuditError, AuditLog
from classgate.policies import Policy
from classgate.policies.class_actions import ClassAction, ClassActionError, refusal, site_host
from classgate.policies.schedules import active_until
from classgate.policies.teacher_settings import format_duration
from classgate.policies.vocabulary import CLASS_ACTION_KINDS, ClassActionKind
from classgate.proxy.class_store import ClassStore, ClassStoreError

MAX_SITES: Final = 50  # a lesson's list of sites, not a category


class ActionRefused(Exception):
    """The action was not made: the message says why and what would be allowed."""


@dataclass(frozen=True)
class Actor:
    """Who acts: a teacher's account, or an admin at the command line."""

    name: str
    groups: tuple[str, ...] = ()
    admin: bool = False

    @classmethod
    def of(cls, account: Account) -> Actor:
        return cls(account.name, account.groups, account.admin)


CLI_ADMIN: Final = Actor("admin", admin=True)


class Classroom:
    def __init__(self, state_dir: Path, policy: Policy, *, clock: Callable[[], float] = time.time) -> None:
        self.policy = policy
        self.store = ClassStore(state_dir)
        self.audit = AuditLog(state_dir)
        self._clock = clock

    # -- who may act on what --------------------------------------------------------------------
    def groups_of(self, actor: Actor) -> tuple[str, ...]:
        """The groups `actor` may act on, in the policy's order."""
        if actor.admin:
            return self.policy.groups
        covered = self.policy.covered_groups(actor.groups)
        return tuple(g for g in self.policy.groups if g in covered)

    def may_act_on(self, actor: Actor, group: str) -> bool:
        return group in self.groups_of(actor)

    # -- actions --------------------------------------------------------------------------------
    def start(self, actor: Actor, kind: ClassActionKind, group: str, sites: Iterable[str] = (),
              duration: dt.timedelta | None = None) -> ClassAction:
        """Make an action (for `duration`, or until the current schedule window ends, at most the cap)."""
        now = float(math.floor(self._clock()))  # whole seconds: what the audit log and `check --at` show
        sites = tuple(sites)
        try:
            hosts = self._hosts(kind, sites)
            until = now + self._seconds(now, duration)
            action = ClassAction(id="", kind=kind, group=group, sites=hosts, starts=now, until=until, by=actor.name)
            if group not in self.policy.groups:
                raise ActionRefused(f"the policy has no group {group!r} (groups: {', '.join(self.policy.groups)})")
            if not self.may_act_on(actor, group):
                raise ActionRefused(f"{actor.name} may act on {', '.join(self.groups_of(actor)) or 'no group'}, "
                                    f"not on group {group!r}")
            why = refusal(self.policy, kind, group, hosts, at=self._local(now))
            if why is not None:
                raise ActionRefused(why)
        except ActionRefused as refused:
            self.audit.write("refused", actor.name, now, self.policy.timezone, kind=kind, group=group,
                             sites=list(sites), reason=str(refused))
            raise
        try:
            kept = self.store.add(action, now)
        except ClassStoreError as exc:
            raise ActionRefused(str(exc)) from None
        try:
            self.audit.action("start", actor.name, kept, self.policy.timezone)
        except AuditError:
            # No action in force without its record: undone before the error reaches the teacher.
            with contextlib.suppress(KeyError, ClassStoreError):
                self.store.end(kept.id, now)
            raise
        return kept

    def end(self, actor: Actor, action_id: str) -> ClassAction:
        """End an action now (the actor must be allowed on its group)."""
        now = self._clock()
        action = self.store.get(action_id, now)
        if action is None:
            raise ActionRefused(f"no class action {action_id!r} is in force (see `classgate class list`)")
        if not self.may_act_on(actor, action.group):
            raise ActionRefused(f"{actor.name} may not end an action on group {action.group!r}")
        try:
            ended = self.store.end(action_id, now)
        except KeyError:
            raise ActionRefused(f"class action {action_id!r} has just ended") from None
        except ClassStoreError as exc:
            raise ActionRefused(str(exc)) from None
        self.audit.action("end", actor.name, ended, self.policy.timezone, at=now)
        return ended

    def active(self, actor: Actor = CLI_ADMIN) -> tuple[ClassAction, ...]:
        """The actions in force on the groups `actor` may act on, most restrictive first."""
        mine = set(self.groups_of(actor))
        return tuple(a for a in self.store.active(self._clock()) if a.group in mine)

    def local_time(self, ts: float) -> dt.datetime:
        return self._local(ts)

    # -- bounds ---------------------------------------------------------------------------------
    def _seconds(self, now: float, duration: dt.timedelta | None) -> float:
        cap = self.policy.document.teachers.max_duration
        if duration is None:
            ends = active_until(self.policy.document.schedules.values(), self._local(now))
            if ends is None:
                return cap.total_seconds()
            return min(cap.total_seconds(), max(60.0, ends.timestamp() - now))
        if duration <= dt.timedelta(0):
            raise ActionRefused("a class action lasts at least 1m")
        if duration > cap:
            raise ActionRefused(f"a class action lasts at most {format_duration(cap)} here (the policy's "
                                f"teachers.max_duration), not {format_duration(duration)}")
        return duration.total_seconds()

    @staticmethod
    def _hosts(kind: ClassActionKind, sites: tuple[str, ...]) -> tuple[str, ...]:
        if kind not in CLASS_ACTION_KINDS:
            raise ActionRefused(f"unknown class action {kind!r} (one of {', '.join(CLASS_ACTION_KINDS)})")
        if kind == "pause":
            if sites:
                raise ActionRefused("a pause stops the whole Internet for the group: give no sites")
            return ()
        if not sites:
            raise ActionRefused(f"{kind} needs at least one site, e.g. example.com")
        if len(sites) > MAX_SITES:
            raise ActionRefused(f"at most {MAX_SITES} sites in one action (got {len(sites)})")
        try:
            return tuple(dict.fromkeys(site_host(s) for s in sites))
        except ClassActionError as exc:
            raise ActionRefused(str(exc)) from None

    def _local(self, ts: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(ts, self.policy.timezone)
