"""The lean master (agent/master.py) pinned against the installed mitmproxy: every addon DumpMaster loads is
either one classgate needs or one it leaves out for a stated reason; a new one fails here until it is sorted."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys

import pytest

from classgate.agent.master import NEEDED, NOT_NEEDED, lean_master, needed_addons

# DumpMaster as `mitmdump` builds it (the dumper included), listed in a child process: DumpMaster installs
# log handlers and sets mitmproxy's global context, which must not leak into this test process.
_LIST_DUMPMASTER = """
import asyncio, json
from mitmproxy.addonmanager import _get_name
from mitmproxy.options import Options
from mitmproxy.tools.dump import DumpMaster

async def names():
    m = DumpMaster(Options(), with_termlog=True, with_dumper=True)
    return [_get_name(a) for a in m.addons.chain]

print(json.dumps(asyncio.run(names())))
"""


@pytest.fixture(scope="module")
def dumpmaster_addons() -> list[str]:
    out = subprocess.run([sys.executable, "-c", _LIST_DUMPMASTER], capture_output=True, text=True, timeout=60,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_dumpmaster_addon_is_needed_or_left_out_for_a_reason(dumpmaster_addons):
    needed = {s.name for s in NEEDED} | {"termlog"}
    unsorted = [n for n in dumpmaster_addons if n not in needed and n not in NOT_NEEDED]
    assert unsorted == [], f"new mitmproxy addons: add each to NEEDED or NOT_NEEDED in agent/master.py: {unsorted}"
    assert needed <= set(dumpmaster_addons), "an addon classgate needs is gone from this mitmproxy"
    assert set(NOT_NEEDED) <= set(dumpmaster_addons), "NOT_NEEDED names an addon this mitmproxy has not"
    assert not needed & set(NOT_NEEDED)


def test_the_needed_addons_keep_dumpmasters_order(dumpmaster_addons):
    order = [n for n in dumpmaster_addons if n in {s.name for s in NEEDED}]
    assert order == [s.name for s in NEEDED]


@pytest.mark.parametrize(
    ("options_given", "expected"),
    [
        ((), ["termlog", "block", "disableh2c", "proxyserver", "nextlayer", "tlsconfig", "errorcheck"]),
        (("scripts",), ["termlog", "block", "disableh2c", "proxyserver", "scriptloader", "nextlayer", "tlsconfig",
                        "errorcheck"]),
        (("ssl_insecure", "scripts"), ["termlog", "block", "disableh2c", "proxyserver", "scriptloader", "nextlayer",
                                       "tlsconfig", "errorcheck"]),
    ],
)
def test_lean_master_loads_termlog_and_the_needed_addons(options_given, expected):
    from mitmproxy.addonmanager import _get_name
    from mitmproxy.options import Options

    async def names() -> list[str]:
        master = lean_master(Options(), options_given)
        try:
            return [_get_name(a) for a in master.addons.chain]
        finally:
            await master.done()  # uninstalls termlog's log handler

    assert asyncio.run(names()) == expected


def test_every_needed_addon_has_a_reason_and_loads():
    assert all(s.why for s in NEEDED) and all(NOT_NEEDED.values())
    assert len(needed_addons(("scripts",))) == len(NEEDED)


def test_lean_master_sends_no_add_log_events():
    """mitmproxy's Master turns each log record into an `add_log` event for every addon; the lean one does not."""
    from mitmproxy import log as mitmproxy_log
    from mitmproxy.options import Options

    seen: list[str] = []

    class ListensToAddLog:
        def add_log(self, entry) -> None:
            seen.append(entry.msg)

    async def log_once() -> list[type]:
        master = lean_master(Options())
        master.addons.add(ListensToAddLog())
        try:
            logging.getLogger("mitmproxy.proxy.server").info("client connect")
            await asyncio.sleep(0.05)  # add_log events are scheduled on the loop (call_soon_threadsafe)
            return [type(h) for h in logging.getLogger().handlers]
        finally:
            await master.done()

    handlers = asyncio.run(log_once())
    assert mitmproxy_log.LegacyLogEvents not in handlers
    assert seen == []
