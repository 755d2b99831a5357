"""load_policy: read and validate the YAML, then compile it into the Policy that decides."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from classgate.policies.document import read_document

if TYPE_CHECKING:
    from classgate.policies.engine import CompiledIndex, Policy


def load_policy(path: str | Path, overlay: str | Path | None = None,
                cache_dir: str | Path | None = None, *, base: Path | None = None, overlay_base: Path | None = None,
                compiled: CompiledIndex | None = None) -> Policy:
    """The compiled policy; raises PolicyError with every problem (YAML, references, locks, list files).

    `base`, `overlay_base` and `compiled` load a kept copy (read_document, compile_policy say how)."""
    from classgate.policies.engine import (
        compile_policy,  # the engine pulls numpy in; only load it when compiling
    )

    doc = read_document(path, overlay, base=base, overlay_base=overlay_base, require_files=compiled is None)
    return compile_policy(doc, cache_dir=Path(cache_dir) if cache_dir is not None else None, compiled=compiled)
