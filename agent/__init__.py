"""The program admins run (the `classgate` CLI) and the Department policy sync."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("classgate")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
