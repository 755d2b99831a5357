"""Each addon in-process with mitmproxy.test.taddons + tflow, against the real compiled test policy."""

from __future__ import annotations

import datetime as dt

import pytest
from mitmproxy import tcp
from mitmproxy.test import taddons, tflow
from OpenSSL import SSL

from classgate.metrics import Metrics
from classgate.policies import Policy
from classgate.proxy.addons.request_filter import RequestFilter
from classgate.proxy.addons.safesearch_rewrite import SafeSearchRewrite
from classgate.proxy.addons.tcp_gate import TcpGate
from classgate.proxy.addons.tls_gate import TlsGate
from classgate.proxy.addons.usage_metrics import UsageMetrics
from classgate.proxy.clock import Clock
from classgate.proxy.context import FilterContext
from classgate.proxy.failsafe import FailSafe
from classgate.proxy.metric_labels import gateway_metrics
from classgate.proxy.policy_holder import PolicyHolder
from classgate.proxy.verdict import NoSink, Verdict, verdict_of
from tests.proxy.proxytest_support import GUEST, STUDENT, TEACHER, TEST_POLICY, UNKNOWN
from tests.proxy.proxytest_tls import hello_data, tls_start

MONDAY_0900 = "2026-11-23 09:00"  # class hours
MONDAY_1200 = "2026-11-23 12:00"


@pytest.fixture
def holder(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(TEST_POLICY, encoding="utf-8")
    h = PolicyHolder(path, cache_dir=tmp_path / "compiled")
    h.load()
    return h


@pytest.fixture
def metrics():
    return gateway_metrics(process_metrics=False)


def context(holder: PolicyHolder, failsafe: FailSafe | None = None, metrics: Metrics | None = None,
            now: str | None = None) -> FilterContext:
    """The components' shared context as the gateway builder makes it (metrics: counted by UsageMetrics)."""
    clock = Clock(dt.datetime.fromisoformat(now)) if now else Clock()
    sink = UsageMetrics(metrics) if metrics is not None else NoSink()
    return FilterContext(holder, failsafe or FailSafe(metrics), clock, verdicts=sink)


def verdict(f) -> Verdict:
    v = verdict_of(f)
    assert v is not None, "no verdict recorded on the flow"
    return v


def sample(m: Metrics, name: str, **labels) -> float:
    return m.registry.get_sample_value(name, labels) or 0.0


def make_flow(client_ip: str, url: str, headers: dict[str, str] | None = None, sni: str | None = None):
    f = tflow.tflow()
    f.client_conn.peername = (client_ip, 40000)
    f.client_conn.sni = sni
    f.request.url = url
    for k, v in (headers or {}).items():
        f.request.headers[k] = v
    return f


@pytest.mark.parametrize(
    ("client", "url", "now", "action", "rule", "category"),
    [
        (TEACHER, "http://allowed.test/", MONDAY_0900, "allow", None, "uncategorized"),
        (STUDENT, "http://blocked.test/", MONDAY_0900, "block", "harmful", "gambling"),
        (STUDENT, "https://www.blocked.test/x?y=1", MONDAY_0900, "block", "harmful", "gambling"),
        (STUDENT, "http://video.test/shorts/abc", MONDAY_0900, "block", "no-shorts", "uncategorized"),
        (STUDENT, "http://video.test/watch?v=1", MONDAY_0900, "allow", None, "uncategorized"),
        (STUDENT, "http://social.test/", MONDAY_0900, "block", "focus-in-class", "social"),
        (STUDENT, "http://social.test/", MONDAY_1200, "allow", None, "social"),
        (TEACHER, "http://social.test/", MONDAY_0900, "allow", None, "social"),
        (UNKNOWN, "http://blocked.test/", MONDAY_0900, "block", "harmful", "gambling"),
    ],
)
def test_filter_decides_on_the_full_url(holder, client, url, now, action, rule, category):
    addon = RequestFilter(context(holder, now=now))
    with taddons.context(addon):
        f = make_flow(client, url)
        addon.requestheaders(f)
    v = verdict(f)
    assert (v.action, v.rule, v.category) == (action, rule, category)
    assert v.error is False
    if action == "block":
        assert f.response.status_code == 403
        assert v.ref and f.response.headers["X-Classgate-Ref"] == v.ref
        assert v.ref in f.response.text
    else:
        assert f.response is None and v.ref is None


@pytest.mark.parametrize(
    ("url", "headers", "sni", "action"),
    [
        # Domain fronting: TLS to an allowed name, Host header of a blocked one.
        ("https://allowed.test/", {"Host": "blocked.test"}, "allowed.test", "block"),
        # Connection intercepted for a blocked SNI; the request claims another host.
        ("https://allowed.test/", {"Host": "allowed.test"}, "blocked.test", "block"),
        # Absolute-form request to a blocked host with an innocent Host header goes to the blocked host.
        ("http://blocked.test/", {"Host": "allowed.test"}, None, "block"),
        ("https://allowed.test/", {"Host": "allowed.test"}, "allowed.test", "allow"),
        # A transparent-mode style target (an IP) with a Host header is judged by the Host header.
        ("http://10.1.2.3/", {"Host": "allowed.test"}, None, "allow"),
        ("http://10.1.2.3/", {"Host": "blocked.test"}, None, "block"),
    ],
)
def test_mismatched_names_are_decided_never_waved_through(holder, url, headers, sni, action):
    addon = RequestFilter(context(holder))
    with taddons.context(addon):
        f = make_flow(TEACHER, url, headers, sni)
        addon.requestheaders(f)
    assert verdict(f).action == action


@pytest.mark.parametrize(
    ("policy_language", "accept_language", "expected"),
    [
        ("vi", None, "Trang này đã bị chặn"),
        ("vi", "en-GB,en;q=0.9", "Trang này đã bị chặn"),  # a Vietnamese school's page, whatever the browser
        ("vi", "vi", "Cờ bạc"),
        ("en", "vi", "This page is blocked"),
        ("auto", "en-GB,en;q=0.9", "This page is blocked"),  # auto: the browser's language
        ("auto", "fr", "Trang này đã bị chặn"),
    ],
)
def test_block_page_language(tmp_path, policy_language, accept_language, expected):
    path = tmp_path / "policy.yaml"
    path.write_text(TEST_POLICY.replace("language: vi", f"language: {policy_language}"), encoding="utf-8")
    holder = PolicyHolder(path, cache_dir=tmp_path / "compiled")
    holder.load()
    addon = RequestFilter(context(holder))
    with taddons.context(addon):
        f = make_flow(STUDENT, "http://blocked.test/", {"Accept-Language": accept_language} if accept_language else {})
        addon.requestheaders(f)
    assert expected in f.response.text
    assert "Phòng CNTT - cntt@school.test" in f.response.text
    assert f.response.headers["content-type"] == "text/html; charset=utf-8"


def test_hostile_url_is_reflected_inert(holder):
    addon = RequestFilter(context(holder))
    with taddons.context(addon):
        f = make_flow(STUDENT, 'http://blocked.test/<script>alert(1)</script>?q="><script>x</script>')
        addon.requestheaders(f)
    assert f.response.status_code == 403
    assert "<script" not in f.response.text.lower()


@pytest.mark.parametrize(
    "break_it",
    [
        "decide_raises",
        "decide_raises_for_the_sni",
        "no_policy",
    ],
)
def test_fail_closed(holder, monkeypatch, metrics, break_it):
    def boom(*args, **kwargs):
        raise RuntimeError("engine exploded")

    url, sni = "http://allowed.test/", None
    if break_it == "decide_raises":
        monkeypatch.setattr(Policy, "decide", boom)
    elif break_it == "decide_raises_for_the_sni":
        real = Policy.decide
        monkeypatch.setattr(Policy, "decide", lambda self, u, **k: boom() if "other.test" in u else real(self, u, **k))
        url, sni = "https://allowed.test/", "other.test"  # the SNI is another destination, decided too
    else:
        holder.policy = None
    failsafe = FailSafe(metrics)
    addon = RequestFilter(context(holder, failsafe))
    with taddons.context(addon):
        f = make_flow(TEACHER, url, sni=sni)
        addon.requestheaders(f)
    assert f.response is not None and f.response.status_code == 403
    assert "Bộ lọc tạm thời gặp lỗi" in f.response.text
    v = verdict(f)
    assert (v.action, v.tier, v.error) == ("block", "error", True)
    assert failsafe.count == 1
    assert sample(metrics, "classgate_filter_errors_total", stage="request") == 1


def test_fail_closed_logs_once_per_cause(holder, monkeypatch, caplog):
    monkeypatch.setattr(Policy, "decide", lambda *a, **k: 1 / 0)
    addon = RequestFilter(context(holder))
    with taddons.context(addon):
        for _ in range(5):
            f = make_flow(TEACHER, "http://allowed.test/")
            addon.requestheaders(f)
            assert f.response.status_code == 403
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "filter error" in r.getMessage()]
    assert len(errors) == 1


def test_each_flow_keeps_the_policy_it_started_with(holder, tmp_path):
    addon = RequestFilter(context(holder))
    with taddons.context(addon):
        f = make_flow(TEACHER, "http://allowed.test/")
        addon.requestheaders(f)
        first = holder.pin(f)
        holder.policy = object()  # a swap after the flow started (any object: it must not be read)
        assert holder.pin(f) is first


@pytest.mark.parametrize(
    ("url", "extra_headers", "engine", "check"),
    [
        ("https://www.google.com/search?q=x&safe=off", {}, "google", lambda r: r.query.get_all("safe") == ["active"]),
        ("https://www.google.com.vn/search?q=x", {}, "google", lambda r: r.query["safe"] == "active"),
        ("https://www.bing.com/search?q=x&adlt=off", {}, "bing", lambda r: r.query["adlt"] == "strict"),
        ("https://duckduckgo.com/?q=x&kp=-2", {}, "duckduckgo", lambda r: r.query["kp"] == "1"),
        ("https://www.youtube.com/watch?v=1", {"YouTube-Restrict": "Off"}, "youtube",
         lambda r: r.headers["YouTube-Restrict"] == "Strict"),
        ("https://allowed.test/search?q=x&safe=off", {}, None, lambda r: r.query["safe"] == "off"),
    ],
)
def test_safesearch_rewrites(holder, url, extra_headers, engine, check):
    failsafe = FailSafe()
    filt, ss = RequestFilter(context(holder, failsafe)), SafeSearchRewrite(context(holder, failsafe))
    with taddons.context(filt, ss):
        f = make_flow(TEACHER, url, extra_headers)
        filt.requestheaders(f)
        ss.requestheaders(f)
    assert f.response is None
    assert verdict(f).safesearch == engine
    assert check(f.request)


def test_safesearch_leaves_blocked_flows_alone(holder):
    failsafe = FailSafe()
    filt, ss = RequestFilter(context(holder, failsafe)), SafeSearchRewrite(context(holder, failsafe))
    with taddons.context(filt, ss):
        f = make_flow(STUDENT, "http://blocked.test/search?q=x")
        filt.requestheaders(f)
        ss.requestheaders(f)
    assert verdict(f).safesearch is None


# -- the TLS gate -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("client", "sni", "mode", "ignored"),
    [
        (TEACHER, "allowed.test", "intercepted", False),
        (STUDENT, "video.test", "intercepted", False),  # path rules need the URL
        (GUEST, "allowed.test", "passthrough", True),  # no school CA on the device
        (UNKNOWN, "allowed.test", "passthrough", True),  # default group is not inspected
        (TEACHER, "bank.test", "passthrough", True),  # never_decrypt: banking
        (TEACHER, "www.bank.test", "passthrough", True),
        (STUDENT, "blocked.test", "intercepted", False),  # blocked, inspected: show the block page
        (GUEST, "blocked.test", "refused", False),  # blocked, not inspected: refuse
        (UNKNOWN, "blocked.test", "refused", False),
        (TEACHER, None, "intercepted", False),  # no SNI: decided on the address (allowed here)
    ],
)
def test_tls_gate(holder, client, sni, mode, ignored):
    gate = TlsGate(context(holder))
    with taddons.context(gate) as tctx:
        data = hello_data(tctx, client, sni)
        gate.tls_clienthello(data)
        start = tls_start(data)
        gate.tls_start_client(start)
    assert gate.counts[mode] == 1
    assert data.ignore_connection is ignored
    if mode == "refused":
        assert isinstance(start.ssl_conn, SSL.Connection)  # the refusing connection, no certificate
        assert data.establish_server_tls_first is False
    else:
        assert start.ssl_conn is None  # left to mitmproxy's TlsConfig


@pytest.mark.parametrize(
    ("client", "server", "mode"),
    [
        (GUEST, ("blocked.test", 443), "refused"),
        (GUEST, ("10.9.8.7", 443), "passthrough"),  # a bare IP: the policy allows it by default
        (GUEST, None, "refused"),  # no SNI and no address: nothing to judge, an error decision
        (TEACHER, None, "intercepted"),  # ... which an inspected client gets as the error page
    ],
)
def test_tls_gate_without_sni_judges_the_address(holder, client, server, mode):
    gate = TlsGate(context(holder))
    with taddons.context(gate) as tctx:
        data = hello_data(tctx, client, None, server=server)
        gate.tls_clienthello(data)
    assert gate.counts[mode] == 1


@pytest.mark.parametrize(
    ("client", "sni", "server", "mode", "ignored"),
    [
        # A bank's SNI sent to a blocked server must not earn a passthrough to it.
        (TEACHER, "bank.test", ("blocked.test", 443), "intercepted", False),  # the block page, inspected
        (GUEST, "bank.test", ("blocked.test", 443), "refused", False),
        (GUEST, "allowed.test", ("blocked.test", 443), "refused", False),
        # Names that disagree are inspected even when neither is blocked: no never_decrypt passthrough.
        (TEACHER, "bank.test", ("allowed.test", 443), "intercepted", False),
        (TEACHER, "allowed.test", ("bank.test", 443), "intercepted", False),
        # The same host written differently is no mismatch; an address target is transparent mode.
        (TEACHER, "www.bank.test", ("WWW.Bank.Test.", 443), "passthrough", True),
        (TEACHER, "bank.test", ("10.9.8.7", 443), "passthrough", True),
        (GUEST, "allowed.test", ("10.9.8.7", 443), "passthrough", True),
    ],
)
def test_tls_gate_judges_a_connect_target_that_disagrees_with_the_sni(holder, client, sni, server, mode, ignored):
    gate = TlsGate(context(holder))
    with taddons.context(gate) as tctx:
        data = hello_data(tctx, client, sni, server=server)
        gate.tls_clienthello(data)
    assert gate.counts[mode] == 1
    assert data.ignore_connection is ignored


@pytest.mark.parametrize("client", [TEACHER, GUEST])
def test_tls_gate_fails_closed(holder, monkeypatch, metrics, client):
    monkeypatch.setattr(Policy, "decide_host", lambda *a, **k: 1 / 0)
    gate = TlsGate(context(holder, metrics=metrics))
    with taddons.context(gate) as tctx:
        data = hello_data(tctx, client, "allowed.test")
        gate.tls_clienthello(data)
        start = tls_start(data)
        gate.tls_start_client(start)
    assert data.ignore_connection is False  # never passthrough on error
    assert isinstance(start.ssl_conn, SSL.Connection)
    assert sample(metrics, "classgate_filter_errors_total", stage="tls") == 1
    assert sample(metrics, "classgate_tls_connections_total", mode="refused") == 1


@pytest.mark.parametrize(
    ("client", "host", "status"),
    [
        (GUEST, "blocked.test", 403),  # refused before any TLS
        (STUDENT, "blocked.test", None),  # inspected: let TLS start so the block page can show
        (GUEST, "allowed.test", None),
    ],
)
def test_connect(holder, client, host, status):
    gate = TlsGate(context(holder))
    with taddons.context(gate):
        f = tflow.tflow()
        f.client_conn.peername = (client, 40000)
        f.request.method = "CONNECT"
        f.request.host, f.request.port = host, 443
        gate.http_connect(f)
    assert (f.response.status_code if f.response else None) == status


# -- the metrics bridge ------------------------------------------------------------------------------

def test_usage_metrics_counts_each_flow_once(holder, metrics):
    holder.metrics = metrics
    metrics.set_policy(holder.policy.version, 0.0, holder.policy.categories, holder.policy.groups, "file")
    ctx = context(holder, metrics=metrics)
    filt, ss, um = RequestFilter(ctx), SafeSearchRewrite(ctx), UsageMetrics(metrics)
    with taddons.context(filt, ss, um):
        for client, url in [
            (STUDENT, "http://blocked.test/"),
            (STUDENT, "http://blocked.test/a"),
            (TEACHER, "https://www.google.com/search?q=x"),
        ]:
            f = make_flow(client, url)
            filt.requestheaders(f)
            ss.requestheaders(f)
            if f.response is None:
                f.response = tflow.tresp()
            um.response(f)
            um.error(f)  # a later error on the same flow must not count it again
    assert sample(metrics, "classgate_requests_total", category="gambling", group="students", action="block") == 2
    assert sample(metrics, "classgate_requests_total", category="uncategorized", group="teachers", action="allow") == 1
    assert sample(metrics, "classgate_safesearch_rewrites_total", engine="google") == 1
    assert sample(metrics, "classgate_blocked_requests_total", category="gambling", tier="department") == 2


# -- raw TCP tunnels ---------------------------------------------------------------------------------

def _tcp_tunnel(gate: TcpGate, client: str, connect_host: str | None, address: tuple[str, int]):
    """A raw TCP flow from `client`, after a CONNECT to `connect_host` (None: transparent mode)."""
    from mitmproxy.proxy.server_hooks import ServerConnectionHookData

    flow = tflow.ttcpflow()
    flow.messages = []
    flow.client_conn.peername = (client, 40000)
    flow.server_conn.address = address
    if connect_host is not None:
        connect = tflow.tflow()
        connect.client_conn = flow.client_conn
        connect.request.method = "CONNECT"
        connect.request.host, connect.request.port = connect_host, address[1]
        gate.http_connect(connect)
    gate.tcp_start(flow)
    data = ServerConnectionHookData(server=flow.server_conn, client=flow.client_conn)
    gate.server_connect(data)
    return flow, data


@pytest.mark.parametrize(
    ("client", "connect_host", "address", "refused"),
    [
        (STUDENT, "blocked.test", ("blocked.test", 22), True),
        (STUDENT, "allowed.test", ("allowed.test", 22), False),
        # The CONNECT target is what counts, whatever address the connection was pointed at since.
        (STUDENT, "blocked.test", ("127.0.0.1", 8000), True),
        (GUEST, "blocked.test", ("blocked.test", 5222), True),
        (TEACHER, "bank.test", ("bank.test", 22), False),
        (UNKNOWN, None, ("10.9.8.7", 22), False),  # transparent mode: the address, allowed by default
    ],
)
def test_tcp_gate(holder, client, connect_host, address, refused):
    gate = TcpGate(context(holder))
    with taddons.context(gate):
        flow, data = _tcp_tunnel(gate, client, connect_host, address)
        assert (data.server.error is not None) is refused
        flow.messages.append(tcp.TCPMessage(True, b"SSH-2.0-x\r\n"))
        gate.tcp_message(flow)
        assert (flow.messages[-1].content == b"") is refused
        gate.client_disconnected(flow.client_conn)
    assert not gate._refused and not gate._connect_targets  # nothing kept per connection


def test_tcp_gate_fails_closed(holder, monkeypatch, metrics):
    monkeypatch.setattr(Policy, "decide_host", lambda *a, **k: 1 / 0)
    gate = TcpGate(context(holder, metrics=metrics))
    with taddons.context(gate):
        _, data = _tcp_tunnel(gate, STUDENT, "allowed.test", ("allowed.test", 22))
    assert data.server.error is not None
    assert sample(metrics, "classgate_filter_errors_total", stage="connect") == 1


def test_a_scheduled_block_says_until_when_and_the_rules_own_reason(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(TEST_POLICY.replace(
        "  - {name: focus-in-class, action: block, groups: [students], when: class_hours, categories: [social]}",
        "  - {name: focus-in-class, action: block, groups: [students], when: class_hours, categories: [social],\n"
        "     reason: {vi: 'Trong giờ học, mạng xã hội tạm khóa.', en: 'Social networks wait until after class.'}}",
    ), encoding="utf-8")
    holder = PolicyHolder(path, cache_dir=tmp_path / "compiled")
    holder.load()
    addon = RequestFilter(context(holder, now=MONDAY_0900))
    with taddons.context(addon):
        f = make_flow(STUDENT, "http://social.test/")
        addon.requestheaders(f)
    page = f.response.text
    assert "Trong giờ học, mạng xã hội tạm khóa." in page
    assert "đến 11:30" in page
    assert "(quy tắc focus-in-class)" in page


@pytest.mark.parametrize(
    ("url", "headers", "action"),
    [
        # A port in the Host header is a port, not an IPv6 address.
        ("http://allowed.test:8081/page", {"Host": "allowed.test:8081"}, "allow"),
        ("http://blocked.test:8081/page", {"Host": "blocked.test:8081"}, "block"),
        ("http://10.9.8.7:8081/page", {"Host": "10.9.8.7:8081"}, "allow"),
        ("http://[2001:db8::7]:8081/page", {"Host": "[2001:db8::7]:8081"}, "allow"),
    ],
)
def test_a_port_in_the_host_header_is_decided_as_a_port(holder, url, headers, action):
    addon = RequestFilter(context(holder))
    with taddons.context(addon):
        f = make_flow(TEACHER, url, headers)
        addon.requestheaders(f)
    v = verdict(f)
    assert (v.action, v.error) == (action, False), v
