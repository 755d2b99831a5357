"""Fixtures for the policy-language tests: the shipped samples, the shared UT1 data, YAML in tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from lang_paths import SAMPLE_UT1, SHARED_UT1


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
