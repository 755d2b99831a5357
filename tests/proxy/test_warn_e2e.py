"""End to end: warn-and-continue and "ask your teacher" on a real `classgate run`, a real origin, real curl.

Students are 127.0.0.3 and 127.0.0.6 (two devices of one group, both trusting the school CA), guests 127.0.0.4
(no school CA: HTTPS is passed through, so a warn page cannot be shown there). The clock is pinned
(CLASSGATE_TEST_NOW), so a "continue" does not expire during the test.
"""

from __future__ import annotations

import contextlib
import html
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from classgate.proxy.ask_code import AskRequest, code_of, shown
from classgate.proxy.quota import shared_table_path
from classgate.proxy.warn_token import COOKIE_NAME, KEY_FILE, derive
from tests.proxy.proxytest_origin import Origin
from tests.proxy.proxytest_support import GUEST, STUDENT, ProxyProcess, curl

pytestmark = pytest.mark.e2e

OTHER_STUDENT = "127.0.0.6"

WARN_POLICY = """\
classgate: 1
name: warn-e2e
timezone: Asia/Ho_Chi_Minh
categories:
  gambling: {domains: [blocked.test]}
  social:   {domains: [social.test]}
groups:
  students: {networks: [127.0.0.3/32, 127.0.0.6/32]}
  guests:   {networks: [127.0.0.4/32]}
rules:
  - {name: never, action: block, domains: [locked.test], locked: true}
  - {name: harmful, action: block, categories: [gambling]}
  - name: think-first
    action: warn
    categories: [social]
    warn: {minutes: 15}
    reason: {vi: "Mạng xã hội làm mất tập trung", en: "Social media distracts from class"}
default: allow
tls:
  inspect_groups: [students]
local_services: [127.0.0.50]
"""


@dataclass
class Answer:
    status: int
    body: str
    headers: dict[str, list[str]]

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower(), [])
        return values[-1] if values else ""


def fetch(proxy: ProxyProcess, url: str, source: str, tmp_path: Path, *, method: str = "GET",
          cookie: str | None = None, headers: dict[str, str] | None = None) -> Answer:
    """One request through the gateway with curl; the response headers too."""
    dump = tmp_path / "headers.txt"
    extra = ["-D", str(dump), "-X", method]
    if method == "POST":
        extra += ["--data-binary", ""]
    if cookie:
        extra += ["-b", cookie]
    r = curl(proxy.url, url, source=source, cacert=proxy.school_ca, headers=headers, extra=extra)
    assert r.returncode == 0, r.stderr
    parsed: dict[str, list[str]] = {}
    for line in dump.read_text(encoding="latin-1").splitlines()[1:]:
        name, sep, value = line.partition(":")
        if sep:
            parsed.setdefault(name.strip().lower(), []).append(value.strip())
    return Answer(r.status, r.text, parsed)


def form_action(page: str) -> str:
    match = re.search(r'<form method="post" action="([^"]+)"', page)
    assert match, "no continue form on the page"
    return html.unescape(match.group(1))


def continue_cookie(answer: Answer) -> str:
    cookie = answer.header("set-cookie")
    assert cookie.startswith(f"{COOKIE_NAME}="), answer.headers
    return cookie.split(";", 1)[0]


@contextlib.contextmanager
def gateway_with(policy_text: str, folder: Path, origin: Origin, origin_ca: Path) -> Iterator[ProxyProcess]:
    """A `classgate run` on `policy_text`, its files in `folder`, stopped at the end."""
    policy = folder / "policy.yaml"
    policy.write_text(policy_text, encoding="utf-8")
    p = ProxyProcess(policy, folder / "state", origin, origin_ca)
    try:
        yield p
    finally:
        p.stop()
        forget_quota_table(folder / "state")


def forget_quota_table(state_dir: Path) -> None:
    """The gateway's shared quota table lives in /dev/shm until reboot: a test's is removed after it."""
    table = shared_table_path(state_dir)
    if table is not None:
        table.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def warn_proxy(tmp_path_factory, origin, origin_pki):
    with gateway_with(WARN_POLICY, tmp_path_factory.mktemp("warn"), origin, origin_pki.ca) as p:
        yield p


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_warned_site_shows_the_page_and_never_reaches_the_origin(warn_proxy, origin, tmp_path, scheme):
    path = f"/feed-{scheme}"
    a = fetch(warn_proxy, f"{scheme}://social.test{path}", STUDENT, tmp_path)
    assert a.status == 403
    assert "Mạng xã hội làm mất tập trung" in a.body and "Tiếp tục vào trang" in a.body
    assert "15 phút" in a.body
    assert form_action(a.body).startswith("/.classgate/continue?t=")
    assert "form-action 'self'" in a.header("content-security-policy")
    assert a.header("set-cookie") == ""
    assert origin.find("social.test", path) == []


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_continue_opens_the_site_for_that_device_only(warn_proxy, origin, tmp_path, scheme):
    path = f"/after-continue-{scheme}"
    page = fetch(warn_proxy, f"{scheme}://social.test{path}", STUDENT, tmp_path)
    action = form_action(page.body)

    answered = fetch(warn_proxy, f"{scheme}://social.test{action}", STUDENT, tmp_path, method="POST")
    assert answered.status == 303
    assert answered.header("location") == path
    attributes = {a.strip().split("=")[0].lower() for a in answered.header("set-cookie").split(";")[1:]}
    assert {"httponly", "samesite", "domain", "max-age", "path"} <= attributes
    assert ("secure" in attributes) == (scheme == "https")
    assert "Max-Age=900" in answered.header("set-cookie") and "Domain=social.test" in answered.header("set-cookie")
    assert origin.find("social.test", "/.classgate") == []  # "continue" is answered by the gateway
    cookie = continue_cookie(answered)

    passed = fetch(warn_proxy, f"{scheme}://social.test{path}", STUDENT, tmp_path, cookie=cookie)
    assert passed.status == 200 and '"origin": "ok"' in passed.body
    seen = origin.find("social.test", path)
    assert len(seen) == 1
    assert COOKIE_NAME not in seen[0].headers.get("cookie", "")  # never sent upstream

    # The same cookie from another device of the same group: still warned (the device is in the MAC).
    other = fetch(warn_proxy, f"{scheme}://social.test{path}", OTHER_STUDENT, tmp_path, cookie=cookie)
    assert other.status == 403 and "Tiếp tục vào trang" in other.body
    # Another device without a cookie: warned.
    assert fetch(warn_proxy, f"{scheme}://social.test{path}", OTHER_STUDENT, tmp_path).status == 403
    assert len(origin.find("social.test", path)) == 1


@pytest.mark.parametrize(
    ("case", "method", "headers", "mangle"),
    [
        ("a GET changes nothing", "GET", {}, None),
        ("a forged form token", "POST", {}, lambda a: re.sub(r"t=[^&]+", "t=1700000000.AAAAAAAAAAAAAAAAAAAAAA", a)),
        ("no form token", "POST", {}, lambda a: a.split("?")[0] + "?to=/"),
        ("more fields than the form has", "POST", {}, lambda a: a + "&a=1&b=2&c=3"),
        ("posted by another site", "POST", {"Origin": "http://evil.test"}, None),
        ("a cross-site fetch", "POST", {"Sec-Fetch-Site": "cross-site"}, None),
    ],
)
def test_continue_is_refused_without_the_warn_pages_own_post(warn_proxy, origin, tmp_path, case, method, headers,
                                                             mangle):
    page = fetch(warn_proxy, "http://social.test/refused", STUDENT, tmp_path)
    action = form_action(page.body)
    if mangle is not None:
        action = mangle(action)
    a = fetch(warn_proxy, f"http://social.test{action}", STUDENT, tmp_path, method=method, headers=headers)
    assert a.status == 403, case
    assert "Tiếp tục vào trang" in a.body  # the warn page again
    assert a.header("set-cookie") == ""
    assert origin.find("social.test", "/.classgate") == []


def test_continue_token_of_another_device_is_refused(warn_proxy, tmp_path):
    action = form_action(fetch(warn_proxy, "http://social.test/x", STUDENT, tmp_path).body)
    a = fetch(warn_proxy, f"http://social.test{action}", OTHER_STUDENT, tmp_path, method="POST")
    assert a.status == 403 and a.header("set-cookie") == ""


def test_continue_never_redirects_to_another_host(warn_proxy, tmp_path):
    action = form_action(fetch(warn_proxy, "http://social.test/x", STUDENT, tmp_path).body)
    evil = re.sub(r"to=[^&]*", "to=%2F%2Fevil.test%2F", action)
    a = fetch(warn_proxy, f"http://social.test{evil}", STUDENT, tmp_path, method="POST")
    assert a.status == 303 and a.header("location") == "/"


def test_device_without_the_school_ca_gets_warn_as_a_block_over_https(warn_proxy, origin, origin_pki, tmp_path):
    """Passed-through HTTPS cannot show a page: the CONNECT is refused (fail closed), never passed through."""
    r = curl(warn_proxy.url, "https://social.test/guest", source=GUEST, cacert=origin_pki.ca)
    assert r.returncode != 0 and ("403" in r.stderr or "CONNECT" in r.stderr)
    # Plain HTTP is seen request by request: the warn page works there.
    a = fetch(warn_proxy, "http://social.test/guest", GUEST, tmp_path)
    assert a.status == 403 and "Tiếp tục vào trang" in a.body
    assert origin.find("social.test", "/guest") == []


def test_block_page_carries_the_ask_code(warn_proxy, tmp_path):
    key = derive((warn_proxy.state_dir / KEY_FILE).read_bytes(), b"ask-code")
    expected = shown(code_of(key, AskRequest("blocked.test", "students", "harmful")))
    pages = [fetch(warn_proxy, url, client, tmp_path).body for url, client in [
        ("http://blocked.test/a", STUDENT), ("http://www.blocked.test/b?q=1", OTHER_STUDENT),
        ("https://blocked.test/c", STUDENT)]]
    for page in pages:
        assert expected in page and "thầy cô" in page
    guest_page = fetch(warn_proxy, "http://blocked.test/a", GUEST, tmp_path).body
    guest_code = shown(code_of(key, AskRequest("blocked.test", "guests", "harmful")))
    assert guest_code in guest_page and expected not in guest_page  # the group is in the code, not the device


def test_no_ask_code_where_a_locked_rule_blocks(warn_proxy, tmp_path):
    """No teacher can lift a locked Department rule: the page does not send the student to one."""
    page = fetch(warn_proxy, "http://locked.test/", STUDENT, tmp_path)
    assert page.status == 403 and "Trang này đã bị chặn" in page.body
    assert 'class="ask"' not in page.body


def test_warnings_are_counted_by_category_and_group(warn_proxy, tmp_path):
    def value(name: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{warn_proxy.metrics_port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        match = re.search(rf'^{name}{{category="social",group="students"}} (\S+)$', text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    shown_before, continued_before = value("classgate_warnings_shown_total"), value("classgate_warnings_continued_total")
    action = form_action(fetch(warn_proxy, "http://social.test/count", STUDENT, tmp_path).body)
    assert fetch(warn_proxy, f"http://social.test{action}", STUDENT, tmp_path, method="POST").status == 303
    assert value("classgate_warnings_shown_total") == shown_before + 1
    assert value("classgate_warnings_continued_total") == continued_before + 1
