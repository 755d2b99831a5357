"""A reload compiles once for all workers: each worker's compile child (proxy/precompile.py) takes the cache's
lock, so the second waits for the first and then finds the index compiled (`index_cached`)."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import time

from classgate.policies import load_policy
from tests.proxy.proxytest_support import TEST_POLICY


def test_a_compile_child_waits_for_the_lock_then_finds_the_index_compiled(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(TEST_POLICY, encoding="utf-8")
    cache = tmp_path / "compiled"
    cache.mkdir()
    cmd = [sys.executable, "-m", "classgate.proxy.precompile", str(policy), "--cache-dir", str(cache)]
    with open(cache / ".compile.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker compiling
        child = subprocess.Popen(cmd)
        time.sleep(2.0)
        assert child.poll() is None, "the compile did not wait for the lock"
        first = load_policy(policy, cache_dir=cache)  # what the worker holding the lock compiles
        assert not first.stats.index_cached
    assert child.wait(timeout=60) == 0
    assert load_policy(policy, cache_dir=cache).stats.index_cached  # the waiting one's result: from the cache
