"""Where the policy comes from: the `classgate_*` options, the file watcher and SIGHUP.

The policy is not a mitmproxy option (options are plain values): the option is a path and the
policy has its own loader (proxy.policy_holder). This addon is first in the chain so that a policy
is in place before any other addon decides.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from mitmproxy import ctx, exceptions
from mitmproxy.addonmanager import Loader

from classgate.policies import PolicyError
from classgate.proxy.policy_files import snapshot
from classgate.proxy.policy_holder import PolicyHolder

log = logging.getLogger(__name__)

DEFAULT_RELOAD_INTERVAL_MS = 2000


class PolicySource:
    def __init__(self, holder: PolicyHolder) -> None:
        self.holder = holder
        self._watch_task: asyncio.Task | None = None
        self._reload_tasks: set[asyncio.Task] = set()
        self._sighup = False

    def load(self, loader: Loader) -> None:
        loader.add_option("classgate_policy", str, "", "The classgate policy file (YAML).")
        loader.add_option("classgate_overlay", str, "", "The school's overlay file (YAML), optional.")
        loader.add_option(
            "classgate_state_dir",
            str,
            ".classgate",
            "Where classgate keeps compiled lists (compiled/) and synced bundles.",
        )
        loader.add_option(
            "classgate_reload_interval_ms",
            int,
            DEFAULT_RELOAD_INTERVAL_MS,
            "Milliseconds between checks of the policy and list files for changes (0 = never).",
        )

    def configure(self, updated: set[str]) -> None:
        if not updated & {"classgate_policy", "classgate_overlay", "classgate_state_dir"}:
            return
        if not ctx.options.classgate_policy:
            return  # the filter blocks everything with a "filter error" page until a policy is set
        policy_path = Path(ctx.options.classgate_policy)
        overlay_path = Path(ctx.options.classgate_overlay) if ctx.options.classgate_overlay else None
        cache_dir = Path(ctx.options.classgate_state_dir) / "compiled"
        h = self.holder
        if (
            h.policy is not None
            and h.policy_path == policy_path
            and h.overlay_path == overlay_path
            and h.cache_dir == cache_dir
        ):
            return  # `classgate run` loaded it already, before starting mitmproxy
        h.policy_path, h.overlay_path, h.cache_dir = policy_path, overlay_path, cache_dir
        try:
            policy = h.load()
        except PolicyError as e:
            raise exceptions.OptionsError(f"policy {policy_path} cannot be used:\n{e}") from None
        except OSError as e:
            raise exceptions.OptionsError(f"policy {policy_path} cannot be read: {e}") from None
        log.info("policy %s version %s loaded from %s", policy.name, policy.version, policy_path)

    def running(self) -> None:
        loop = asyncio.get_running_loop()
        if ctx.options.classgate_reload_interval_ms > 0:
            self._watch_task = loop.create_task(self._watch(), name="classgate-policy-watch")
        try:
            loop.add_signal_handler(signal.SIGHUP, self.request_reload)
            self._sighup = True
        except (NotImplementedError, RuntimeError, ValueError, AttributeError):
            log.debug("SIGHUP reload not available here (not the main thread, or no signals)")

    def done(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            self._watch_task = None
        for task in list(self._reload_tasks):
            task.cancel()
        if self._sighup:
            try:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            except RuntimeError:
                pass
            self._sighup = False

    def request_reload(self) -> None:
        """SIGHUP: reload from the configured files (on the event loop, in the background)."""
        log.info("SIGHUP: reloading the policy")
        task = asyncio.get_running_loop().create_task(self.holder.reload())
        self._reload_tasks.add(task)
        task.add_done_callback(self._reload_tasks.discard)

    async def _watch(self) -> None:
        # The baseline is the files as the running policy was read from them (policy_files.as_loaded), not as
        # they are now: an edit made since (while this process was still starting) is a change.
        seen_gen = self.holder.generation
        seen = self.holder.files_as_loaded or await asyncio.to_thread(snapshot, self.holder.watched_paths())
        while True:
            await asyncio.sleep(ctx.options.classgate_reload_interval_ms / 1000)
            if self.holder.generation != seen_gen:
                # Someone else (SIGHUP, the sync) swapped the policy: its files, as read, are the new baseline.
                seen_gen = self.holder.generation
                seen = self.holder.files_as_loaded or await asyncio.to_thread(snapshot, self.holder.watched_paths())
            now = await asyncio.to_thread(snapshot, self.holder.watched_paths())
            if now == seen:
                continue
            changed = [p for (p, *a), (_, *b) in zip(now, seen) if a != b] if len(now) == len(seen) else []
            log.info("policy files changed (%s): reloading", ", ".join(changed) or "file set changed")
            # A failed reload is not retried until the files change again: no error every 2 s.
            seen = now
            try:
                await self.holder.reload()
            except Exception:  # holder.reload logs its own failures; this is the last guard
                log.exception("policy reload crashed")
            if self.holder.generation != seen_gen:
                # Reloaded: its files as read (the lists of the new policy included) are the baseline, so an
                # edit made during the compile is not missed.
                seen = self.holder.files_as_loaded or seen
            seen_gen = self.holder.generation
