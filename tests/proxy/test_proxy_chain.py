"""The single mitmproxy addon that runs the components: order, fail-closed, the CA page before the filter."""

from __future__ import annotations

import pytest
from mitmproxy.test import taddons, tflow
from proxytest_support import STUDENT, TEST_POLICY

from metrics import Metrics
from proxy.addons import Classgate, components, default_addons
from proxy.addons.ca_page import CaPage
from proxy.ca import ensure_ca
from proxy.failsafe import FailSafe
from proxy.policy_holder import PolicyHolder


class Recorder:
    def __init__(self, name: str, log: list, fail: bool = False) -> None:
        self.name, self.log, self.fail = name, log, fail

    def requestheaders(self, flow) -> None:
        self.log.append(self.name)
        if self.fail:
            raise RuntimeError(f"{self.name} broke")

    def response(self, flow) -> None:
        self.log.append(f"{self.name}:response")
        if self.fail:
            raise RuntimeError(f"{self.name} broke")


@pytest.mark.parametrize(
    ("fails", "ran", "killed"),
    [
        ((), ["a", "b", "c"], False),
        (("b",), ["a", "b"], True),  # a broken step stops the chain and kills the flow: never a pass
        (("a",), ["a"], True),
    ],
)
def test_requestheaders_in_order_and_fail_closed(fails, ran, killed):
    log: list = []
    chain = Classgate([Recorder(n, log, n in fails) for n in "abc"], FailSafe())
    f = tflow.tflow()
    chain.requestheaders(f)
    assert log == ran
    assert (f.error is not None and "killed" in f.error.msg.lower()) == killed


def test_a_broken_counter_does_not_stop_the_others():
    log: list = []
    failsafe = FailSafe()
    chain = Classgate([Recorder("a", log, fail=True), Recorder("b", log)], failsafe)
    f = tflow.tflow(resp=True)
    chain.response(f)
    assert log == ["a:response", "b:response"]
    assert failsafe.count == 1


def test_ca_page_is_served_under_a_block_everything_policy(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(TEST_POLICY.replace("default: allow", "default: block"), encoding="utf-8")
    holder = PolicyHolder(path, cache_dir=tmp_path / "c")
    holder.load()
    ca = ensure_ca(tmp_path / "state")
    [addon] = default_addons(holder, Metrics())
    with taddons.context(addon) as tctx:
        tctx.options.update(confdir=str(ca.directory))
        for url, status in [("http://classgate.ca/", 200), ("http://classgate.ca/classgate-ca.crt", 200),
                            ("http://classgate.ca/nope", 404), ("http://allowed.test/", 403)]:
            f = tflow.tflow()
            f.client_conn.peername = (STUDENT, 1234)
            f.request.url = url
            f.request.headers["Host"] = f.request.host
            addon.requestheaders(f)
            assert f.response.status_code == status, url
        f = tflow.tflow()
        f.request.url = "http://classgate.ca/classgate-ca.crt"
        f.request.headers["Host"] = "classgate.ca"
        addon.requestheaders(f)
        assert f.response.content == ca.der()


def test_components_order_is_the_documented_one(tmp_path):
    names = [type(c).__name__ for c in components(PolicyHolder(), Metrics(), FailSafe())]
    assert names == ["PrivacyLog", "PolicySource", "CaPage", "TlsGate", "TcpGate", "RequestFilter", "SafeSearch",
                     "UsageMetrics"]
    assert CaPage in {type(c) for c in components(PolicyHolder(), None, FailSafe())}
