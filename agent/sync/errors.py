"""Why a sync failed, in a small fixed set of reasons (they become metric labels and status text)."""

from __future__ import annotations

# Bounded: metrics label values. Each reason says what the operator should look at.
REASONS = (
    "network",         # connection refused, DNS, TLS: the Department or the path to it is down
    "timeout",         # connect/read timeout or a download slower than its deadline (slow drip)
    "http_error",      # the server answered 4xx/5xx (404 of a file that timestamp points to...)
    "oversized",       # more bytes than the cap for that file (endless data)
    "truncated",       # the connection closed before the announced length
    "bad_metadata",    # not TUF metadata at all (garbage, an HTML error page)
    "bad_signature",   # not signed by the threshold of trusted keys (tampered, unknown key)
    "rollback",        # an older version than one already trusted (replay)
    "expired",         # metadata past its expiry (freeze)
    "bad_hash",        # a target whose length or hash is not what the signed metadata says (tampered file)
    "bad_bundle",      # the manifest is missing or malformed, or lists a file the metadata does not sign
    "invalid_policy",  # the bundle verifies but the policy does not validate (with the school overlay)
    "install",         # writing the bundle to disk failed (disk full, permissions)
    "activate",        # the proxy refused to load the installed policy
    "internal",        # a bug: anything else
)


class SyncError(Exception):
    """A sync attempt that failed; `reason` is one of REASONS, `str()` says the details."""

    def __init__(self, reason: str, message: str):
        if reason not in REASONS:
            reason = "internal"
        self.reason = reason
        super().__init__(message)


class NoBundleError(SyncError):
    """Nothing installed yet (a fresh gateway before its first successful sync)."""

    def __init__(self, message: str = "no verified bundle installed yet"):
        super().__init__("bad_bundle", message)
