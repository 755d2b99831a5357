"""Fixtures for the metrics tests: a Metrics fed with a fixed, known set of events."""

from __future__ import annotations

import pytest
from metrics_testlib import FIXED_TIME, feed_known_events

from metrics import Metrics


@pytest.fixture
def fed_metrics() -> Metrics:
    m = Metrics(process_metrics=False, clock=lambda: FIXED_TIME)
    feed_known_events(m)
    return m
