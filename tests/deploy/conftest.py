"""Fixtures for the deployment tests."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.deploy.deploy_helpers import DEPLOY, load_script


@pytest.fixture(scope="session")
def doh_script() -> ModuleType:
    return load_script(DEPLOY / "dns" / "make-doh-blocklist")
