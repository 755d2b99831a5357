"""Warn-and-continue and quotas in process: the request filter and the gates with the real compiled policy, a
moving clock, and the metrics they count."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from mitmproxy import tcp
from mitmproxy.test import taddons, tflow

from classgate.metrics import Metrics
from classgate.proxy.addons.request_filter import RequestFilter
from classgate.proxy.addons.tcp_gate import TcpGate
from classgate.proxy.addons.tls_gate import TlsGate
from classgate.proxy.addons.usage_metrics import UsageMetrics
from classgate.proxy.ask_code import AskRequest
from classgate.proxy.clock import Clock
from classgate.proxy.context import FilterContext
from classgate.proxy.failsafe import FailSafe
from classgate.proxy.metric_labels import gateway_metrics
from classgate.proxy.policy_holder import PolicyHolder
from classgate.proxy.quota import shared_table_path
from classgate.proxy.verdict import verdict_of
from classgate.proxy.warn import CONTINUE_PATH, StudentSide, safe_return_path, strip_continue_cookie
from classgate.proxy.warn_token import COOKIE_NAME
from tests.proxy.proxytest_tls import hello_data, tls_start

STUDENT, GUEST = "10.0.3.7", "10.0.4.7"
POLICY = """\
classgate: 1
name: warn-side
timezone: Asia/Ho_Chi_Minh
categories:
  social: {domains: [social.test]}
  video:  {domains: [video.test]}
groups:
  students: {networks: [10.0.3.0/24]}
  guests:   {networks: [10.0.4.0/24]}
rules:
  - {name: think-first, action: warn, categories: [social], warn: {minutes: 10}, quota: {minutes: 2}}
  - {name: video-time, action: allow, categories: [video], quota: {minutes: 1}}
default: allow
tls:
  inspect_groups: [students]
"""


@pytest.fixture
def holder(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    h = PolicyHolder(path, cache_dir=tmp_path / "compiled")
    h.load()
    return h


@pytest.fixture
def metrics() -> Metrics:
    m = gateway_metrics(process_metrics=False)
    m.set_policy("v", 0.0, ["social", "video"], ["students", "guests"])
    return m


class Gateway:
    """One student side (keys, quotas) seen through filters whose clocks can be moved, as time passes."""

    def __init__(self, holder: PolicyHolder, metrics: Metrics) -> None:
        self.holder, self.metrics = holder, metrics
        self.student = StudentSide(bytes(32), metrics)

    def context(self, now: str) -> FilterContext:
        return FilterContext(self.holder, FailSafe(self.metrics), Clock(dt.datetime.fromisoformat(now)),
                             verdicts=UsageMetrics(self.metrics), student=self.student)

    def request(self, now: str, client: str, url: str, *, method: str = "GET", cookie: str | None = None,
                headers: dict[str, str] | None = None) -> tflow.HTTPFlow:
        addon = RequestFilter(self.context(now))
        with taddons.context(addon):
            f = tflow.tflow()
            f.client_conn.peername = (client, 40000)
            f.request.method = method
            f.request.url = url
            if cookie:
                f.request.headers["cookie"] = cookie
            for name, value in (headers or {}).items():
                f.request.headers[name] = value
            addon.requestheaders(f)
        return f


def form_action(f: tflow.HTTPFlow) -> str:
    match = re.search(r'<form method="post" action="([^"]+)"', f.response.text)
    assert match, f.response.text
    return html.unescape(match.group(1))


def cookie_of(f: tflow.HTTPFlow) -> str:
    return f.response.headers["set-cookie"].split(";")[0]


def continued(gw: Gateway, now: str, client: str = STUDENT, path: str = "/feed") -> str:
    page = gw.request(now, client, f"http://social.test{path}")
    answer = gw.request(now, client, f"http://social.test{form_action(page)}", method="POST")
    assert answer.response.status_code == 303
    return cookie_of(answer)


@pytest.mark.parametrize(
    ("later", "passes"),
    [
        ("2026-11-23 09:00:00", True),
        ("2026-11-23 09:09:59", True),
        ("2026-11-23 09:10:00", False),  # the rule's 10 minutes are over: warned again
        ("2026-11-24 09:00:00", False),
    ],
)
def test_continue_lasts_the_rules_minutes(holder, metrics, later, passes):
    gw = Gateway(holder, metrics)
    cookie = continued(gw, "2026-11-23 09:00:00")
    f = gw.request(later, STUDENT, "http://www.social.test/other", cookie=f"a=1; {cookie}; b=2")
    assert (f.response is None) == passes
    v = verdict_of(f)
    assert v is not None and v.action == ("allow" if passes else "warn")
    if passes:
        assert f.request.headers["cookie"] == "a=1; b=2"  # ours is gone before the request goes upstream


def test_a_warned_and_continued_site_still_counts_against_its_quota(holder, metrics):
    gw = Gateway(holder, metrics)
    page = gw.request("2026-11-23 09:00", STUDENT, "http://social.test/")
    assert "2 phút" in page.response.text  # the quota left, on the warn page
    cookie = continued(gw, "2026-11-23 09:00")
    assert gw.request("2026-11-23 09:00:30", STUDENT, "http://social.test/", cookie=cookie).response is None
    assert gw.request("2026-11-23 09:01:00", STUDENT, "http://social.test/", cookie=cookie).response is None
    used_up = gw.request("2026-11-23 09:02:00", STUDENT, "http://social.test/", cookie=cookie)
    assert used_up.response.status_code == 403 and "00:00" in used_up.response.text
    assert verdict_of(used_up).action == "block"
    again = gw.request("2026-11-23 09:03:00", STUDENT, "http://social.test/")
    assert re.search(r"Thời gian còn lại hôm nay: 0 phút", again.response.text)


def test_the_warn_page_never_charges_the_quota(holder, metrics):
    gw = Gateway(holder, metrics)
    for minute in range(5):
        f = gw.request(f"2026-11-23 09:0{minute}", STUDENT, "http://social.test/")
        assert "Thời gian còn lại hôm nay: 2 phút" in f.response.text


def test_continue_is_answered_only_where_the_site_is_warned(holder, metrics):
    gw = Gateway(holder, metrics)
    f = gw.request("2026-11-23 09:00", STUDENT, f"http://allowed.test{CONTINUE_PATH}?t=x&to=/", method="POST")
    assert f.response is None  # an allowed site's own path: not ours, passed on


@pytest.mark.parametrize(
    ("family", "count"),
    [("classgate_warnings_shown_total", 2), ("classgate_warnings_continued_total", 1),
     ("classgate_quotas_used_up_total", 1)],
)
def test_events_are_counted_with_bounded_labels(holder, metrics, family, count):
    gw = Gateway(holder, metrics)
    continued(gw, "2026-11-23 09:00")
    gw.request("2026-11-23 09:00", GUEST, "http://social.test/")  # plain HTTP: a guest is warned too
    gw.request("2026-11-23 09:00", STUDENT, "http://video.test/")
    for minute in (1, 2, 3):
        gw.request(f"2026-11-23 09:0{minute}", STUDENT, "http://video.test/")
    total = sum(s.value for m in metrics.registry.collect() for s in m.samples if s.name == family)
    assert total == count
    labels = {tuple(sorted(s.labels.items())) for m in metrics.registry.collect() for s in m.samples
              if s.name == family}
    assert all(dict(lab)["group"] in {"students", "guests"} and dict(lab)["category"] in {"social", "video"}
               for lab in labels)


def test_metrics_fold_unknown_labels():
    m = gateway_metrics(process_metrics=False)
    m.set_policy("v", 0.0, ["social"], ["students"])
    m.record_warning_shown("www.social.test", "10.0.3.7")
    assert m.registry.get_sample_value("classgate_warnings_shown_total",
                                       {"category": "other", "group": "other"}) == 1


@pytest.mark.parametrize(
    ("client", "mode"),
    [(STUDENT, "intercepted"), (GUEST, "refused")],  # the warn page needs interception; else fail closed
)
def test_tls_gate_never_passes_a_warned_site_through(holder, client, mode):
    gate = TlsGate(FilterContext(holder, FailSafe()))
    with taddons.context(gate) as tctx:
        data = hello_data(tctx, client, "social.test")
        gate.tls_clienthello(data)
        gate.tls_start_client(tls_start(data))
    assert data.ignore_connection is False
    assert gate.counts[mode] == 1


def test_connect_of_a_guest_to_a_warned_site_is_refused(holder):
    gate = TlsGate(FilterContext(holder, FailSafe()))
    with taddons.context(gate):
        f = tflow.tflow()
        f.client_conn.peername = (GUEST, 40000)
        f.request.method, f.request.host, f.request.port = "CONNECT", "social.test", 443
        gate.http_connect(f)
    assert f.response is not None and f.response.status_code == 403


def test_a_raw_tunnel_to_a_warned_site_is_cut(holder):
    gate = TcpGate(FilterContext(holder, FailSafe()))
    with taddons.context(gate):
        f = tflow.ttcpflow()
        f.client_conn.peername = (STUDENT, 40000)
        f.server_conn.address = ("social.test", 5222)
        gate.tcp_start(f)
        f.messages = [tcp.TCPMessage(True, b"hello")]
        gate.tcp_message(f)
    assert f.messages[-1].content == b""


@pytest.mark.parametrize(
    ("raw", "path"),
    [("/feed?x=1", "/feed?x=1"), ("/", "/"), ("//evil.test/", "/"), ("/\\evil.test", "/"),
     ("https://evil.test/", "/"), ("", "/"), ("/a\r\nSet-Cookie: x", "/")],
)
def test_continue_goes_back_to_a_path_on_the_same_host(raw, path):
    assert safe_return_path(raw) == path


@pytest.mark.parametrize(
    ("cookies", "left"),
    [
        ([f"{COOKIE_NAME}=v1.1.x"], None),
        ([f"a=1; {COOKIE_NAME}=v1.1.x"], "a=1"),
        (["a=1", f"{COOKIE_NAME}=v1.1.x; b=2"], "a=1; b=2"),  # HTTP/2 sends one header per cookie
        (["a=1; b=2"], "a=1; b=2"),
        ([f"not_{COOKIE_NAME}=1"], f"not_{COOKIE_NAME}=1"),
    ],
)
def test_our_cookie_never_goes_upstream(cookies, left):
    f = tflow.tflow()
    for value in cookies:
        f.request.headers.add("cookie", value)
    strip_continue_cookie(f.request)
    assert f.request.headers.get("cookie") == left


def test_quota_counts_connections_the_gateway_passes_through(holder, metrics):
    """A device without the school CA is seen once per connection, at its start: that start counts its minute."""
    gw = Gateway(holder, metrics)
    modes = []
    for now in ("2026-11-23 09:00:00", "2026-11-23 09:00:40", "2026-11-23 09:01:00", "2026-11-24 08:00:00"):
        gate = TlsGate(gw.context(now))
        with taddons.context(gate) as tctx:
            gate.tls_clienthello(hello_data(tctx, GUEST, "video.test"))
        modes.append(next(mode for mode, n in gate.counts.items() if n))
    assert modes == ["passthrough", "passthrough", "refused", "passthrough"]
    assert metrics.registry.get_sample_value("classgate_quotas_used_up_total",
                                             {"category": "video", "group": "guests"}) == 1
    requests = {action: metrics.registry.get_sample_value(
        "classgate_requests_total", {"category": "video", "group": "guests", "action": action}) for action in
        ("allow", "block")}
    assert requests == {"allow": 3, "block": 1}  # the refused connection counts as the block it is


def test_workers_of_one_gateway_share_quotas_and_keys(tmp_path):
    """Each worker builds its own StudentSide from the state dir: one table of minutes, one key, for all."""
    shm = tmp_path / "shm"  # stands for /dev/shm
    shm.mkdir()
    first, second = (StudentSide.from_state_dir(tmp_path / "state", shm=shm) for _ in range(2))
    def quota_tables() -> list[str]:
        return [p.name for p in shm.iterdir() if p.name.startswith("classgate-quota-")]

    assert quota_tables() == []  # mapped on first use only: a policy without quotas leaves nothing
    assert first.quotas is first.quotas
    assert quota_tables() == [shared_table_path(tmp_path / "state", shm).name]
    tz = dt.timezone(dt.timedelta(hours=7))
    assert first.quotas.charge(STUDENT, "video-time", 1, dt.datetime(2026, 11, 23, 9, 0, tzinfo=tz)).allowed
    assert not second.quotas.charge(STUDENT, "video-time", 1, dt.datetime(2026, 11, 23, 9, 1, tzinfo=tz)).allowed
    cookie = first.tokens.cookie("social.test", STUDENT, 2_000_000_000)
    assert second.tokens.cookie_valid(cookie, "social.test", STUDENT, 1_900_000_000)
    assert first.asks.encode("x.test", "students", None) == second.asks.encode("x.test", "students", None)
    # A code one worker showed is read back by another process (the console) from the shared table.
    code = first.asks.encode("only-first.test", "students", "focus")
    assert second.asks.decode(code) == AskRequest("only-first.test", "students", "focus")
