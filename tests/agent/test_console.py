"""The web console's app through Flask's test client: each security property as a table of cases.

Real parts: the real teacher accounts (scrypt), the real class-action store and audit log in a temp state dir,
a real compiled policy. The clocks (wall and monotonic) are injected so that expiry and lockouts are tested
without sleeping.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from classgate.agent.console.app import COOKIE, create_app
from classgate.agent.console.settings import IDLE_SECONDS, LIFETIME_SECONDS, ConsoleSettings
from classgate.agent.console.throttle import ACCOUNT_FAILURES, ADDRESS_FAILURES, LOCK_SECONDS, SPREAD_FAILURES
from classgate.agent.teachers.accounts import FILE as ACCOUNTS_FILE
from classgate.agent.teachers.accounts import Accounts
from classgate.agent.teachers.classroom import CLI_ADMIN, Classroom
from classgate.agent.teachers.enforced import enforced_policy
from classgate.agent.teachers.totp import code_at
from classgate.proxy.address import Address
from classgate.proxy.class_store import ClassStore

POLICY = """\
classgate: 1
name: console-test
timezone: Asia/Ho_Chi_Minh
categories:
  gambling: {domains: [blocked.test], locked: true}
  social:   {domains: [social.test]}
groups:
  class-10a: {networks: [10.1.1.0/24]}
  class-10b: {networks: [10.1.2.0/24]}
  lab:       {networks: [203.0.113.0/24]}   # a school on public addresses
rules:
  - {name: harmful, action: block, locked: true, categories: [gambling]}
  - {name: no-social, action: block, categories: [social]}
default: allow
teachers: {max_duration: 1h}
"""
PASSWORD = "correct horse battery"
HTTPS = "https://console.school.test"


@dataclass
class Clock:
    """Wall time for sessions and actions, monotonic time for lockouts: both moved by the test."""

    now: float = field(default_factory=time.time)
    mono: float = 1000.0

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds


@pytest.fixture(scope="module")
def accounts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The accounts, made once (scrypt is slow on purpose): lan (class-10a), hieu (admin), fresh (one-time
    password), totp (with an authenticator)."""
    state = tmp_path_factory.mktemp("console-accounts")
    accounts = Accounts(state)
    accounts.add("lan", ("class-10a",))
    accounts.set_password("lan", PASSWORD)
    accounts.add("hieu", (), admin=True)
    accounts.set_password("hieu", PASSWORD)
    accounts.add("totp", ("class-10b",), totp=True)
    accounts.set_password("totp", PASSWORD)
    _, one_time = accounts.add("fresh", ("class-10b",))
    (state / "fresh-password").write_text(one_time)
    return state


@dataclass
class Console:
    client: FlaskClient
    state: Path
    clock: Clock
    policy: Path
    address: str = "127.0.0.1"
    csrf: str = ""

    def get(self, path: str, **kw: object) -> TestResponse:
        r = self.client.get(path, base_url=HTTPS, environ_base={"REMOTE_ADDR": self.address}, **kw)
        self._remember(r)
        return r

    def post(self, path: str, data: dict[str, str] | None = None, *, csrf: str | None = None) -> TestResponse:
        form = {"csrf": self.csrf if csrf is None else csrf, **(data or {})}
        r = self.client.post(path, data=form, base_url=HTTPS, environ_base={"REMOTE_ADDR": self.address})
        self._remember(r)
        return r

    def sign_in(self, name: str, password: str = PASSWORD, code: str | None = None) -> TestResponse:
        self.get("/login")
        r = self.post("/login", {"name": name, "password": password, **({"code": code} if code else {})})
        if r.status_code == 303:
            self.get(r.headers["Location"])  # the signed-in session's CSRF token
        return r

    def cookie(self) -> str | None:
        c = self.client.get_cookie(COOKIE, domain="console.school.test")
        return c.value if c is not None else None

    def _remember(self, r: TestResponse) -> None:
        found = re.search(r'name="csrf" value="([^"]+)"', r.get_data(as_text=True))
        if found:
            self.csrf = found.group(1)

    def room(self) -> Classroom:
        return Classroom(self.state, enforced_policy(self.state, self.policy), clock=lambda: self.clock.now)

    def actions(self) -> list[tuple[str, str]]:
        return [(a.kind, a.group) for a in ClassStore(self.state).active(self.clock.now)]


@pytest.fixture
def console(tmp_path: Path, accounts_file: Path) -> Iterator[Console]:
    state = tmp_path / "state"
    state.mkdir()
    shutil.copy(accounts_file / ACCOUNTS_FILE, state / ACCOUNTS_FILE)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    clock = Clock()
    app = create_app(ConsoleSettings(state, Address("127.0.0.1", 0), policy_path=policy),
                     clock=lambda: clock.now, monotonic=lambda: clock.mono)
    with app.test_client() as client:
        yield Console(client, state, clock, policy)


def signed_in(r: TestResponse) -> bool:
    return r.status_code == 200 and "Đăng xuất" in r.get_data(as_text=True)


# -- LAN only ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("address", "status"), [
    ("127.0.0.1", 200),  # the gateway itself
    ("::1", 200),
    ("10.1.1.7", 200),  # a class's network
    ("192.168.5.5", 200),  # a private range in no group
    ("fd00::5", 200),
    ("203.0.113.9", 200),  # a group's network on public addresses
    ("8.8.8.8", 403),  # the Internet
    ("::ffff:8.8.8.8", 403),  # the same, as a dual-stack socket shows it
    ("2001:db8::1", 403),
    ("198.51.100.1", 403),
    ("127.0.0.5", 403),  # loopback is the gateway's 127.0.0.1 and ::1 only
    ("not-an-address", 403),
])
def test_only_the_lan_reaches_the_console(console: Console, address: str, status: int) -> None:
    console.address = address
    r = console.get("/login")
    assert r.status_code == status
    if status == 403:
        assert "chỉ mở được từ mạng nội bộ" in r.get_data(as_text=True)
        assert COOKIE not in r.headers.get("Set-Cookie", "")  # not even a session
        assert console.post("/login", {"name": "lan", "password": PASSWORD}).status_code == 403


# -- the session cookie ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("attribute", ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"])
@pytest.mark.parametrize("when", ["sign-in form", "signed in"])
def test_session_cookie_attributes(console: Console, attribute: str, when: str) -> None:
    r = console.get("/login") if when == "sign-in form" else console.sign_in("lan")
    cookie = next(c for c in r.headers.getlist("Set-Cookie") if c.startswith(COOKIE + "="))
    assert attribute in [part.strip() for part in cookie.split(";")]
    assert "Max-Age" not in cookie and "Expires" not in cookie  # ends with the browser; the server ends it too


def test_the_cookie_is_a_random_id_and_nothing_else(console: Console) -> None:
    console.sign_in("lan")
    value = console.cookie()
    assert value is not None and len(value) >= 40 and "lan" not in value
    other = Console(console.client.application.test_client(), console.state, console.clock, console.policy)
    other.sign_in("lan")
    assert other.cookie() != value


@pytest.mark.parametrize("forged", ["", "lan", "x" * 43, "admin=1"])
def test_a_made_up_session_id_signs_no_one_in(console: Console, forged: str) -> None:
    console.client.set_cookie(COOKIE, forged, domain="console.school.test")
    r = console.get("/")
    assert r.status_code == 303 and r.headers["Location"].endswith("/login")


def test_signing_in_gives_a_new_id_and_signing_out_ends_it(console: Console) -> None:
    console.get("/login")
    before = console.cookie()
    console.post("/login", {"name": "lan", "password": PASSWORD})
    after = console.cookie()
    assert before and after and before != after  # no session fixation
    console.client.set_cookie(COOKIE, before, domain="console.school.test")
    assert console.get("/").status_code == 303  # the id from before the sign-in is no one's
    console.client.set_cookie(COOKIE, after, domain="console.school.test")
    assert signed_in(console.get("/"))
    assert console.post("/logout").status_code == 303
    console.client.set_cookie(COOKIE, after, domain="console.school.test")  # replayed after signing out
    assert console.get("/").status_code == 303


@pytest.mark.parametrize(("steps", "each", "alive"), [
    (1, IDLE_SECONDS - 60, True),
    (1, IDLE_SECONDS + 1, False),  # idle too long
    (int(LIFETIME_SECONDS // (IDLE_SECONDS / 2)) - 1, IDLE_SECONDS / 2, True),  # busy all day, just under
    (int(LIFETIME_SECONDS // (IDLE_SECONDS / 2)) + 1, IDLE_SECONDS / 2, False),  # busy, but past the lifetime
])
def test_sessions_expire(console: Console, steps: int, each: float, alive: bool) -> None:
    assert console.sign_in("lan").status_code == 303
    r = console.get("/")
    for _ in range(steps):
        console.clock.advance(each)
        r = console.get("/")
    assert signed_in(r) is alive
    if not alive:
        assert r.headers["Location"].endswith("/login")


# -- CSRF, and no change on GET -------------------------------------------------------------------------------
POSTS = [
    ("/login", {"name": "lan", "password": PASSWORD}),
    ("/logout", {}),
    ("/actions", {"kind": "pause", "group": "class-10a", "duration": "10m"}),
    ("/actions/ACTION/end", {}),
    ("/password", {"password": "a new long password", "repeat": "a new long password"}),
    ("/lang", {"lang": "en"}),
    ("/admin/check", {"url": "http://social.test/"}),
]


@pytest.mark.parametrize(("path", "data"), POSTS)
@pytest.mark.parametrize("token", ["", "forged-token", "OTHER-SESSION"])
def test_every_form_needs_its_sessions_csrf_token(console: Console, path: str, data: dict[str, str],
                                                  token: str) -> None:
    action = console.room().start(CLI_ADMIN, "block", "class-10a", ["social.test"])
    assert console.sign_in("hieu").status_code == 303
    if token == "OTHER-SESSION":  # a real token, of someone else's session (a student's sign-in form)
        other = Console(console.client.application.test_client(), console.state, console.clock, console.policy)
        other.get("/login")
        token = other.csrf
    r = console.post(path.replace("ACTION", action.id), data, csrf=token)
    assert r.status_code == 403
    assert "Biểu mẫu đã cũ" in r.get_data(as_text=True)
    assert console.actions() == [("block", "class-10a")]  # nothing started, nothing ended
    page = console.get("/")
    assert signed_in(page) and 'lang="vi"' in page.get_data(as_text=True)  # still signed in, still Vietnamese
    assert Accounts(console.state).verify("hieu", PASSWORD) is not None  # password unchanged


@pytest.mark.parametrize("path", ["/logout", "/actions", "/actions/ACTION/end", "/lang", "/admin/check"])
def test_no_state_changes_on_get(console: Console, path: str) -> None:
    action = console.room().start(CLI_ADMIN, "block", "class-10a", ["social.test"])
    console.sign_in("hieu")
    r = console.get(path.replace("ACTION", action.id) + "?lang=en&kind=pause&group=class-10a&csrf=" + console.csrf)
    assert r.status_code == 405
    assert console.actions() == [("block", "class-10a")]
    assert signed_in(console.get("/"))


def test_the_forms_carry_the_token(console: Console) -> None:
    console.room().start(CLI_ADMIN, "block", "class-10a", ["social.test"])
    console.sign_in("hieu")
    for path in ("/", "/admin"):
        html = console.get(path).get_data(as_text=True)
        forms = re.findall(r"<form\b.*?</form>", html, re.DOTALL)
        assert len(forms) >= 3
        for form in forms:
            if 'method="get"' in form:  # only the student's-code lookup, which fills a form in and changes nothing
                assert 'action="/"' in form and 'name="code"' in form and 'name="csrf"' not in form, form
                continue
            assert 'method="post"' in form and f'name="csrf" value="{console.csrf}"' in form


# -- signing in: lockout --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("wrong", "then_from", "then_name", "status"), [
    (ACCOUNT_FAILURES - 1, "127.0.0.1", "lan", 303),  # under the limit: the right password works
    (ACCOUNT_FAILURES, "127.0.0.1", "lan", 429),  # locked: even the right password is not checked
    # The teacher on their own device is not locked out by a student's five wrong passwords on a phone.
    (ACCOUNT_FAILURES, "10.1.1.9", "lan", 303),
    (ACCOUNT_FAILURES, "127.0.0.1", "hieu", 303),  # another account from the same device is not locked
])
def test_wrong_passwords_lock_the_account_on_that_device(console: Console, wrong: int, then_from: str,
                                                         then_name: str, status: int) -> None:
    for _ in range(wrong):
        assert console.sign_in("lan", "not the password").status_code == 401
    console.address = then_from
    r = console.sign_in(then_name)
    assert r.status_code == status
    if status == 429:
        assert "Đăng nhập sai quá nhiều lần" in r.get_data(as_text=True) and "15 phút" in r.get_data(as_text=True)


@pytest.mark.parametrize(("then_from", "status"), [("127.0.0.1", 429), ("10.1.1.9", 303)])
def test_many_names_from_one_device_lock_the_device(console: Console, then_from: str, status: int) -> None:
    for i in range(ADDRESS_FAILURES):
        assert console.sign_in(f"guess{i}", "x").status_code == 401  # each name under its own limit
    console.address = then_from
    assert console.sign_in("lan").status_code == status


@pytest.mark.parametrize(("devices", "then_from", "status"), [
    (SPREAD_FAILURES // ACCOUNT_FAILURES - 1, "10.9.9.9", 303),  # short of the spread limit: still open
    (SPREAD_FAILURES // ACCOUNT_FAILURES, "10.9.9.9", 429),  # a guess spread over many devices locks it
])
def test_a_guess_spread_over_many_devices_locks_the_account_everywhere(console: Console, devices: int,
                                                                       then_from: str, status: int) -> None:
    for d in range(devices):
        console.address = f"10.2.0.{d + 1}"
        for _ in range(ACCOUNT_FAILURES):
            console.sign_in("lan", "not the password")
    console.address = then_from
    assert console.sign_in("lan").status_code == status


@pytest.mark.parametrize(("wait", "status"), [(LOCK_SECONDS - 30, 429), (LOCK_SECONDS + 1, 303)])
def test_a_lockout_ends(console: Console, wait: float, status: int) -> None:
    for _ in range(ACCOUNT_FAILURES):
        console.sign_in("lan", "wrong")
    console.clock.advance(wait)
    assert console.sign_in("lan").status_code == status


@pytest.mark.parametrize(("name", "password", "code", "status"), [
    ("lan", PASSWORD, None, 303),
    ("lan", "wrong", None, 401),
    ("nobody", PASSWORD, None, 401),
    ("totp", PASSWORD, None, 401),  # the account has an authenticator: the code is needed
    ("totp", PASSWORD, "000000", 401),
    ("totp", PASSWORD, "NOW", 303),
    ("totp", "wrong", "NOW", 401),
])
def test_sign_in(console: Console, name: str, password: str, code: str | None, status: int) -> None:
    if code == "NOW":
        secret = Accounts(console.state).get("totp").totp_secret  # type: ignore[union-attr]
        code = code_at(secret, time.time())  # type: ignore[arg-type]
    r = console.sign_in(name, password, code)
    assert r.status_code == status
    if status == 401:
        assert "không đúng" in r.get_data(as_text=True)
        assert console.get("/").status_code == 303


def test_a_one_time_password_must_be_changed_first(console: Console, accounts_file: Path) -> None:
    one_time = (accounts_file / "fresh-password").read_text()
    r = console.sign_in("fresh", one_time)
    assert r.headers["Location"].endswith("/password")
    assert console.get("/").headers["Location"].endswith("/password")  # nothing else until then
    console.get("/password")
    assert console.post("/password", {"password": "long enough pw", "repeat": "other pw long"}).status_code == 400
    assert console.post("/password", {"password": "short", "repeat": "short"}).status_code == 400
    assert console.post("/password", {"password": "long enough pw", "repeat": "long enough pw"}).status_code == 303
    assert signed_in(console.get("/"))
    assert Accounts(console.state).verify("fresh", one_time) is None
    assert Accounts(console.state).verify("fresh", "long enough pw") is not None


def test_a_removed_account_is_signed_out_at_once(console: Console) -> None:
    console.sign_in("lan")
    assert signed_in(console.get("/"))
    Accounts(console.state).remove("lan")
    assert console.get("/").status_code == 303


# -- what a teacher may do ------------------------------------------------------------------------------------
def test_a_teacher_acts_on_their_group_and_ends_it(console: Console) -> None:
    console.sign_in("lan")
    page = console.get("/").get_data(as_text=True)
    assert '<option value="class-10a"' in page and "class-10b" not in page  # only their groups offered
    r = console.post("/actions", {"kind": "allow", "group": "class-10a", "sites": "social.test\nwww.geogebra.org",
                                  "duration": "45m"})
    assert r.status_code == 303
    [action] = ClassStore(console.state).active(console.clock.now)
    assert (action.kind, action.group, action.sites, action.by) == ("allow", "class-10a",
                                                                   ("social.test", "www.geogebra.org"), "lan")
    assert action.until - action.starts == 45 * 60
    shown = console.get(r.headers["Location"]).get_data(as_text=True)
    assert f'id="action-{action.id}"' in shown and "Đã bắt đầu" in shown
    ended = console.post(f"/actions/{action.id}/end")
    assert ended.status_code == 303 and console.actions() == []
    assert f"Đã kết thúc thao tác {action.id}" in console.get(ended.headers["Location"]).get_data(as_text=True)
    assert "Đã kết thúc" not in console.get("/?ended=you+are+hacked").get_data(as_text=True)


@pytest.mark.parametrize(("data", "refusal"), [
    ({"kind": "allow", "group": "class-10b", "sites": "social.test"}, "lan may act on class-10a, not on group"),
    ({"kind": "pause", "group": "lab"}, "not on group &#39;lab&#39;"),
    ({"kind": "allow", "group": "class-10a", "sites": "blocked.test"},
     "the Department&#39;s locked rule &#39;harmful&#39; blocks it"),
    ({"kind": "allow", "group": "class-10a", "sites": "social.test", "duration": "2h"},
     "at most 1h here"),
    ({"kind": "allow", "group": "class-10a", "sites": ""}, "allow needs at least one site"),
    ({"kind": "unblock-all", "group": "class-10a"}, "unknown class action"),
])
def test_refusals_show_their_sentence_on_the_form(console: Console, data: dict[str, str], refusal: str) -> None:
    console.sign_in("lan")
    r = console.post("/actions", data)
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert refusal in html and 'class="error"' in html
    assert console.actions() == []


def test_a_teacher_cannot_end_another_groups_action(console: Console) -> None:
    other = console.room().start(CLI_ADMIN, "pause", "class-10b")
    console.sign_in("lan")
    assert f"action-{other.id}" not in console.get("/").get_data(as_text=True)  # not even shown
    r = console.post(f"/actions/{other.id}/end")
    assert r.status_code == 400 and "class-10b" in r.get_data(as_text=True)
    assert console.actions() == [("pause", "class-10b")]


@pytest.mark.parametrize(("name", "status"), [("lan", 403), ("hieu", 200)])
def test_the_admin_pages_are_for_admins(console: Console, name: str, status: int) -> None:
    console.sign_in(name)
    assert console.get("/admin").status_code == status
    assert console.post("/admin/check", {"url": "http://social.test/"}).status_code == status


def test_an_admin_acts_on_every_group(console: Console) -> None:
    console.sign_in("hieu")
    page = console.get("/").get_data(as_text=True)
    assert all(f'<option value="{g}"' in page for g in ("class-10a", "class-10b", "lab"))
    assert console.post("/actions", {"kind": "pause", "group": "lab", "duration": "10m"}).status_code == 303
    assert console.actions() == [("pause", "lab")]


# -- escaping -------------------------------------------------------------------------------------------------
SCRIPT = "<script>alert(1)</script>"


@pytest.mark.parametrize(("path", "data"), [
    ("/actions", {"kind": "allow", "group": "class-10a", "sites": f"{SCRIPT}.test"}),  # echoed, and in the refusal
    ("/admin/check", {"url": f"http://social.test/{SCRIPT}", "client": ""}),
    ("/admin/check", {"url": "http://social.test/", "client": SCRIPT}),
    ("/login", {"name": SCRIPT, "password": "x"}),
])
def test_what_a_user_typed_is_shown_escaped(console: Console, path: str, data: dict[str, str]) -> None:
    if path != "/login":
        console.sign_in("hieu")
    else:
        console.get("/login")
    html = console.post(path, data).get_data(as_text=True)
    assert SCRIPT not in html
    assert "&lt;script&gt;" in html


def test_the_pages_forbid_scripts_frames_and_caching(console: Console) -> None:
    r = console.get("/login")
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert "script-src" not in r.headers["Content-Security-Policy"]  # so no script at all
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["Cache-Control"] == "no-store" and r.headers["X-Content-Type-Options"] == "nosniff"


# -- the admin's check ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("url", "client", "shown"), [
    ("http://social.test/", "10.1.1.4", ["CHẶN", "no-social", "department", "class-10a", "social"]),
    ("http://blocked.test/", "", ["CHẶN", "harmful", "gambling"]),
    ("http://example.org/", "10.1.2.4", ["CHO PHÉP", "mặc định của chính sách", "class-10b"]),
])
def test_why_is_this_blocked(console: Console, url: str, client: str, shown: list[str]) -> None:
    console.sign_in("hieu")
    html = console.post("/admin/check", {"url": url, "client": client}).get_data(as_text=True)
    result = html[html.index('id="check-result"'):]
    for text in shown:
        assert text in result


def test_the_check_explains_a_teachers_action(console: Console) -> None:
    action = console.room().start(CLI_ADMIN, "allow", "class-10a", ["social.test"], None)
    console.sign_in("hieu")
    html = console.post("/admin/check", {"url": "http://social.test/x", "client": "10.1.1.4"}).get_data(as_text=True)
    result = html[html.index('id="check-result"'):]
    assert "CHO PHÉP" in result and "teacher" in result and action.id in result and "admin" in result


def test_the_language_switch(console: Console) -> None:
    console.get("/login")
    assert console.post("/lang", {"lang": "en", "next": "/login"}).headers["Location"].endswith("/login")
    html = console.get("/login").get_data(as_text=True)
    assert 'lang="en"' in html and "Sign in" in html
    assert console.post("/lang", {"lang": "vi", "next": "https://evil.test/"}).headers["Location"] == "/"


@pytest.mark.parametrize(("query", "selected", "sites"), [
    ("?kind=block&group=class-10a&site=www.geogebra.org", '<option value="block" selected>', "www.geogebra.org"),
    ("?kind=lock&site=%3Cb%3Ex%3C/b%3E", '<option value="lock" selected>', "&lt;b&gt;x&lt;/b&gt;"),
    ("", '<option value="allow" selected>', ""),
])
def test_the_form_can_be_opened_filled_in(console: Console, query: str, selected: str, sites: str) -> None:
    console.sign_in("lan")
    html = console.get("/" + query).get_data(as_text=True)
    assert selected in html
    assert f'spellcheck="false">{sites}</textarea>' in html
    assert console.actions() == []  # a filled-in form is only a form


# -- "ask your teacher": the code on a student's block page fills the form in --------------------------------

@pytest.mark.parametrize(("typed", "filled"), [
    ("as shown", True),
    ("lower case, no dash", True),
    ("a code no block page showed", False),
    ("not a code at all", False),
])
def test_a_students_code_fills_in_the_unblock_form(console: Console, typed: str, filled: bool) -> None:
    from classgate.proxy.ask_code import AskCodes, shared_ask_table, shown
    from classgate.proxy.shared_memory import shared_path

    table = shared_ask_table(console.state)  # as a worker of the gateway on this state dir makes it
    if table is None:
        pytest.skip("no writable /dev/shm here")
    try:
        code = AskCodes(b"k" * 32, shared=table).encode("games.test", "class-10a", "focus")
        text = {"as shown": shown(code), "lower case, no dash": code.lower(),
                "a code no block page showed": "ZZZZ-ZZZZ" if code != "ZZZZZZZZ" else "YYYY-YYYY",
                "not a code at all": "<script>"}[typed]
        console.sign_in("lan")
        html = console.get("/", query_string={"code": text}).get_data(as_text=True)
        assert ('<textarea id="sites" name="sites" autocapitalize="none" spellcheck="false">games.test</textarea>'
                in html) is filled, html
        assert ('<option value="class-10a" selected>' in html) is filled
        assert ("Không tìm thấy mã này" in html) is not filled
        assert "<script>" not in html
    finally:
        table.close()
        path = shared_path(console.state, "asks")
        assert path is not None
        path.unlink(missing_ok=True)
