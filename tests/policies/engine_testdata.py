"""Where the shared real data lives for the engine tests (../shared/data beside the repo)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent.parent / "shared" / "data"


def have(*parts: str) -> bool:
    return SHARED_DATA.joinpath(*parts).exists()


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or a pytest skip saying what is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data not found: {path} (expected ../shared/data beside the repo)")
    return path
