"""The single mitmproxy addon that runs the components: order, fail-closed, the CA page before the filter."""

from __future__ import annotations

import asyncio

import pytest
from mitmproxy import hooks
from mitmproxy.test import taddons, tflow

from classgate.proxy.addons import Classgate, UsageMetrics, components, default_addons
from classgate.proxy.addons.ca_page import CaPage
from classgate.proxy.addons.chain import ON_ERROR, ChainError, known_hooks
from classgate.proxy.addons.early_layer import EarlyOutcome
from classgate.proxy.ca import ensure_ca
from classgate.proxy.context import FilterContext
from classgate.proxy.failsafe import FailSafe
from classgate.proxy.metric_labels import gateway_metrics
from classgate.proxy.policy_holder import PolicyHolder
from tests.proxy.proxytest_support import STUDENT, TEST_POLICY


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
    counter = UsageMetrics(gateway_metrics(process_metrics=False))
    [addon] = default_addons(FilterContext(holder, FailSafe(), verdicts=counter), counter)
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
    counter = UsageMetrics(gateway_metrics(process_metrics=False))
    names = [type(c).__name__ for c in components(FilterContext(PolicyHolder(), FailSafe()), counter)]
    assert names == ["PrivacyLog", "DeviceConnectionLimit", "PolicySource", "RequestSyntaxGate", "CaPage", "TlsGate", "TcpGate", "RequestFilter",
                     "SafeSearchRewrite", "UpstreamGuard", "PassthroughSplice", "SocketCloser", "UsageMetrics"]
    assert CaPage in {type(c) for c in components(FilterContext(PolicyHolder(), FailSafe()))}


class Stray:
    def tls_established_client(self, data) -> None:  # a real mitmproxy hook the chain has no policy for
        pass

    def reload_later(self) -> None:  # not a mitmproxy hook: ignored
        pass


def test_a_component_hook_the_chain_does_not_know_fails_at_construction():
    with pytest.raises(ChainError, match="tls_established_client"):
        Classgate([Stray()], FailSafe())


def test_every_hook_with_an_error_policy_is_a_mitmproxy_hook():
    # A misspelt key in ON_ERROR would forward a hook mitmproxy never calls.
    assert set(ON_ERROR) <= known_hooks()


def test_the_hook_registry_is_complete_in_a_fresh_interpreter():
    # mitmproxy fills hooks.all_hooks as modules are imported: the chain must not depend on import order
    # (once, `classgate run` built the chain before the HTTP layer was imported and filtered nothing).
    import subprocess
    import sys

    code = ("from classgate.proxy.addons.chain import known_hooks; "
            "assert {'requestheaders', 'tls_clienthello', 'tcp_start', 'dns_request'} <= known_hooks()")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_chain_forwards_every_hook_its_components_implement():
    counter = UsageMetrics(gateway_metrics(process_metrics=False))
    parts = components(FilterContext(PolicyHolder(), FailSafe()), counter)
    chain = Classgate(parts, FailSafe())
    implemented = {name for name in hooks.all_hooks for c in parts if callable(getattr(c, name, None))}
    assert implemented == set(chain.hooks)
    assert all(callable(getattr(chain, name)) for name in implemented)


def test_async_component_hooks_are_awaited_in_order():
    import asyncio

    log: list = []

    class Slow:
        async def running(self) -> None:
            await asyncio.sleep(0)
            log.append("slow")

    class Quick:
        def running(self) -> None:
            log.append("quick")

    chain = Classgate([Slow(), Quick()], FailSafe())
    asyncio.run(chain.running())
    assert log == ["slow", "quick"]


class EarlyDecider:
    """A component with the TLS gate's early layer question (proxy/addons/early_layer.py)."""

    def __init__(self, outcome: object, *, asynchronous: bool = False) -> None:
        self.outcome, self.asynchronous = outcome, asynchronous

    def early_layer(self, nextlayer):
        if self.asynchronous:
            async def later():
                if isinstance(self.outcome, Exception):
                    raise self.outcome
                return self.outcome
            return later()
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize(
    ("outcome", "expected", "failures"),
    [
        (EarlyOutcome.RELAYED, EarlyOutcome.RELAYED, 0),
        (EarlyOutcome.WAITING, EarlyOutcome.WAITING, 0),
        (EarlyOutcome.LATER, EarlyOutcome.LATER, 0),
        # A broken early decision leaves the connection to the TLS layer, whose tls_clienthello decides (and
        # refuses when it breaks too): counted, never a relay.
        (RuntimeError("early decision broke"), EarlyOutcome.LATER, 1),
    ],
)
def test_the_early_layer_question_goes_to_the_one_component_that_answers_it(outcome, expected, failures,
                                                                            asynchronous):
    failsafe = FailSafe()
    chain = Classgate([Recorder("a", []), EarlyDecider(outcome, asynchronous=asynchronous)], failsafe)
    answer = chain.early_layer(object())
    if asynchronous:
        answer = asyncio.run(answer)
    assert answer is expected
    assert failsafe.count == failures


def test_no_component_answers_the_early_question_so_mitmproxy_chooses():
    assert Classgate([Recorder("a", [])], FailSafe()).early_layer(object()) is EarlyOutcome.LATER


def test_two_components_answering_the_early_question_fail_at_construction():
    with pytest.raises(ChainError, match="more than one component decides layers early"):
        Classgate([EarlyDecider(EarlyOutcome.LATER), EarlyDecider(EarlyOutcome.LATER)], FailSafe())
