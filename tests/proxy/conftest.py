"""Fixtures for the proxy tests; they live in proxytest_support so tests can import them by a unique name."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the proxytest_* helper modules

from proxytest_support import origin, origin_pki, policy_file, proxy  # noqa: F401  (fixtures)
