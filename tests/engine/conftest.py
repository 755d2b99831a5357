"""Fixtures for the matching and decision-engine tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_testdata import shared_path


@pytest.fixture(scope="session")
def ut1_dir() -> Path:
    return shared_path("ut1")
