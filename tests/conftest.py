"""Fixtures every test folder may use: the shipped samples, the shared UT1 data, YAML in tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from classgate.metrics import Metrics
from classgate.proxy.metric_labels import gateway_metrics
from classgate.proxy.shared_memory import SHARED_MEMORY
from tests.metrics.metrics_testlib import FIXED_TIME, feed_known_events
from tests.policies.engine_testdata import shared_path
from tests.policies.lang_paths import SAMPLE_UT1, SHARED_UT1


@pytest.fixture(scope="session", autouse=True)
def _no_shared_tables_left() -> Iterator[None]:
    """The gateways the tests start keep their quota and ask-code tables in /dev/shm (RAM, outliving them on
    purpose: a restart keeps the day's counts); those the session made are removed when it ends."""
    def tables() -> set[Path]:
        return set(SHARED_MEMORY.glob("classgate-*")) if SHARED_MEMORY.is_dir() else set()

    before = tables()
    yield
    for table in tables() - before:
        table.unlink(missing_ok=True)


@pytest.fixture
def shared_ut1() -> Path:
    if not (SHARED_UT1 / "gambling" / "domains").is_file():
        pytest.skip(f"the UT1 blacklists are not at {SHARED_UT1} (see ../shared/data/ut1/SOURCE.md)")
    return SHARED_UT1


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write YAML text to tmp_path/<name>; `{UT1}` in the text stands for the sample lists folder."""

    def write(text: str, name: str = "policy.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text.replace("{UT1}", str(SAMPLE_UT1)), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def ut1_dir() -> Path:
    return shared_path("ut1")


@pytest.fixture
def fed_metrics() -> Metrics:
    """A gateway's Metrics fed with a fixed, known set of events (tests/metrics/metrics_testlib.py)."""
    m = gateway_metrics(process_metrics=False, clock=lambda: FIXED_TIME)
    feed_known_events(m)
    return m
