"""Compile a policy in a child process, so a reload never holds the proxy's GIL for long.

Compiling the full UT1 lists takes seconds of CPU, much of it in C calls that keep the GIL
(splitting, sorting, hashing millions of entries): in a worker thread that stalls the event loop for
hundreds of milliseconds at a time. The child writes the compiled index to the cache directory; the
proxy then loads the policy from that cache in a thread, which is short.

    python -m proxy.precompile POLICY [--overlay FILE] --cache-dir DIR

Exit 0: compiled. Exit 2: the policy is invalid, one problem per line on stdout (JSON). Anything
else is a crash, and the caller compiles in-process instead.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

INVALID = 2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m classgate.proxy.precompile")
    ap.add_argument("policy", type=Path)
    ap.add_argument("--overlay", type=Path, default=None)
    ap.add_argument("--cache-dir", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        # Below the proxy: on a busy gateway the compile may wait; requests should not.
        os.nice(10)
    except (OSError, AttributeError):
        pass
    from classgate.policies import PolicyError, load_policy

    # The workers of one gateway (agent/workers.py) reload together: one compiles, the others wait here and
    # then find the index in the cache.
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    with open(args.cache_dir / ".compile.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            load_policy(args.policy, overlay=args.overlay, cache_dir=args.cache_dir)
        except PolicyError as e:
            for p in e.problems:
                print(json.dumps({"problem": str(p)}))
            return INVALID
    return 0


async def precompile(policy: Path, overlay: Path | None, cache_dir: Path) -> list[str] | None:
    """Run the child. None: compiled (or the child could not run: compile in-process);
    a list: the policy is invalid, with its problems."""
    cmd = [sys.executable, "-m", "classgate.proxy.precompile", str(policy), "--cache-dir", str(cache_dir)]
    if overlay is not None:
        cmd += ["--overlay", str(overlay)]
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
    except (OSError, NotImplementedError):
        return None
    if proc.returncode == INVALID:
        problems = []
        for line in out.decode("utf-8", "replace").splitlines():
            try:
                problems.append(json.loads(line)["problem"])
            except (ValueError, KeyError, TypeError):
                continue
        return problems or ["the policy is invalid (no details from the compiler)"]
    if proc.returncode != 0:
        log.warning("policy compile in a child process failed (exit %s); compiling in-process instead:\n%s",
                    proc.returncode, err.decode("utf-8", "replace")[-2000:])
    return None


if __name__ == "__main__":
    sys.exit(main())
