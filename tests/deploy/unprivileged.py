"""Run a command as `nobody` with no capabilities, even when what it runs sits behind root's doors.

CI clones into `mktemp -d` (0700, root's) and pyenv keeps its Pythons under /root (0700): `nobody`
cannot enter either, so it cannot run the checkout's venv. On a gateway classgate lives under /opt,
which anyone may enter. To give the test that layout without copying the installation (the venv's
paths are absolute) or opening the real directories to `nobody` (an ACL on a CI host outlives a
crashed test), the command runs in a private mount namespace where each directory `nobody` may not
enter is covered by a world-searchable stand-in holding bind mounts of just the trees it needs, at
their own paths. Nothing outside the namespace changes and it ends with the command. Files keep
their owners and modes: `nobody` still reads only what anyone may read.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

NOBODY = "65534"

# setpriv keeps root's effective capabilities until it execs, so the kernel opens the first program
# (and its interpreter) with permission checks bypassed. Starting /bin/sh there and letting it `cd`
# and exec the real command puts both under nobody's own permissions.
_AS_NOBODY = (
    "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
    "--inh-caps=-all", "--bounding-set=-all",
    "/bin/sh", "-c", 'cd "$0" && exec "$@"',
)  # fmt: skip
# As root inside the new namespace: bind "$1" on "$2", and so on up to `--`, then exec the rest.
_MOUNT_THEN_EXEC = 'while [ "$1" != -- ]; do mount --rbind "$1" "$2"; shift 2; done; shift; exec "$@"'


def as_nobody(argv: list[str], cwd: Path) -> list[str]:
    return [*_AS_NOBODY, str(cwd), *argv]


def closed_doors(paths: Iterable[Path]) -> dict[Path, Path]:
    """For each path `nobody` cannot reach, the topmost directory on its way it may not enter."""
    chains = {path: [*reversed(path.parents), path] for path in paths}
    steps = sorted({step for chain in chains.values() for step in chain})
    probe = 'for d; do [ -x "$d" ] || printf "%s\\0" "$d"; done'  # asked as nobody: ACLs count too
    result = subprocess.run(
        as_nobody(["/bin/sh", "-c", probe, "probe", *map(str, steps)], Path("/")),
        capture_output=True, text=True, check=True, timeout=10,
    )  # fmt: skip
    closed = {Path(step) for step in result.stdout.split("\0") if step}
    return {path: next(s for s in chain if s in closed) for path, chain in chains.items() if path in closed}


def stand_ins(paths: Iterable[Path], scratch: Path) -> list[tuple[Path, Path]]:
    """The (source, target) bind mounts, in order, after which `nobody` reaches every path."""
    doors = closed_doors(paths)
    # A path inside another one that is covered comes along with it.
    inner = {path for path in doors for other in doors if path != other and path.is_relative_to(other)}
    trees = {path: door for path, door in doors.items() if path not in inner}
    entries: list[tuple[Path, Path]] = []
    covers: list[tuple[Path, Path]] = []
    for n, door in enumerate(sorted(set(trees.values()))):
        stand_in = scratch / f"stand-in-{n}"
        for tree in (tree for tree, d in trees.items() if d == door):
            # The tree's own directory is a stand-in too (it may be the closed door), its entries the real ones.
            leaf = stand_in / tree.relative_to(door)
            leaf.mkdir(parents=True, exist_ok=True)
            for step in (leaf, *leaf.parents):
                if step == scratch:
                    break
                step.chmod(0o755)  # whatever the umask
            for entry in tree.iterdir():
                target = leaf / entry.name
                if entry.is_symlink():
                    target.symlink_to(os.readlink(entry))
                    continue
                if entry.is_dir():
                    target.mkdir()
                else:
                    target.touch()
                entries.append((entry, target))
        covers.append((stand_in, door))
    # Every entry is bound while the doors are still the real ones.
    return entries + covers


def nobody_command(argv: list[str], *, cwd: Path, reach: Iterable[Path], scratch: Path) -> list[str]:
    """The command that runs `argv` from `cwd` as `nobody` with no capabilities, able to reach
    every path in `reach` (stand-ins are built under `scratch`, which must outlive the command)."""
    mounts = [str(path) for pair in stand_ins(sorted(set(reach)), scratch) for path in pair]
    return [
        "unshare", "--mount", "--propagation", "private",
        "/bin/sh", "-ec", _MOUNT_THEN_EXEC, "mount-then-exec", *mounts, "--",
        *as_nobody(argv, cwd),
    ]  # fmt: skip
