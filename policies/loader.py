"""load_policy: read and validate the YAML, then compile it into the Policy that decides."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from classgate.policies.document import read_document

if TYPE_CHECKING:
    from classgate.policies.engine import Policy


def load_policy(path: str | Path, overlay: str | Path | None = None,
                cache_dir: str | Path | None = None) -> Policy:
    """The compiled policy; raises PolicyError with every problem (YAML, references, locks, list files)."""
    from classgate.policies.engine import (
        compile_policy,  # the engine pulls numpy in; only load it when compiling
    )

    return compile_policy(read_document(path, overlay), cache_dir=Path(cache_dir) if cache_dir is not None else None)
