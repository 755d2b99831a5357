"""A real browser on the real console beside a real gateway: Playwright driving Debian's Chromium against a
`classgate console` subprocess and a `classgate run` subprocess on one state dir, students played by curl.

A teacher made with the real `classgate teachers add` signs in with the one-time password, chooses their
own, unblocks a site for their class; a student's request through the gateway passes within 2 s; the teacher
ends it and the request is blocked again within 2 s. A student (no session) reaches no teacher page, and
wrong passwords lock the account. The console's certificate is checked by curl trusting only the school CA
(Chromium here runs with certificate errors ignored: it has no place to be given one CA file). Screenshots
go to test-artifacts/.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from classgate.agent.console.throttle import ACCOUNT_FAILURES
from tests.proxy.proxytest_support import (  # noqa: F401  (origin, origin_pki: fixtures)
    ARTIFACTS,
    CLASSGATE,
    ProxyProcess,
    curl,
    free_port,
    origin,
    origin_pki,
    wait_port,
)
from tests.proxy.test_class_e2e import seconds_until

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
CHROMIUM = "/usr/bin/chromium"
STUDENT = "127.0.0.3"
EFFECTIVE_WITHIN = 2.0
NEW_PASSWORD = "cô Lan đổi mật khẩu"
POLICY = """\
classgate: 1
name: console-browser
timezone: Asia/Ho_Chi_Minh
categories:
  social: {domains: [social.test]}
groups:
  class-10a: {networks: [127.0.0.3/32]}
  class-10b: {networks: [127.0.0.4/32]}
rules:
  - {name: no-social, action: block, categories: [social]}
default: allow
teachers: {max_duration: 1h}
local_services: [127.0.0.50]
"""


class ConsoleProcess:
    def __init__(self, state_dir: Path, metrics_port: int, log: Path) -> None:
        self.port = free_port()
        self._log = open(log, "wb")  # noqa: SIM115 - open for the process's life
        self.log = log
        self.proc = subprocess.Popen(
            [str(CLASSGATE), "console", "--listen", f"127.0.0.1:{self.port}", "--state-dir", str(state_dir),
             "--metrics", f"127.0.0.1:{metrics_port}"], stdout=self._log, stderr=subprocess.STDOUT)
        try:
            wait_port(self.port, self.proc, timeout=60)
        except Exception:  # noqa: BLE001 - re-raised with the console's output
            self.stop()
            raise RuntimeError(f"console did not start:\n{log.read_text(errors='replace')}") from None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def classgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLASSGATE), *args], capture_output=True, text=True, timeout=60, check=False)


def one_time_password(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    found = re.search(r"^one-time password: (\S+)$", result.stdout, re.MULTILINE)
    assert found, result.stdout
    return found.group(1)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, origin, origin_pki) -> Iterator[ProxyProcess]:  # noqa: F811
    d = tmp_path_factory.mktemp("console-browser")
    policy = d / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    p = ProxyProcess(policy, d / "state", origin, origin_pki.ca, now=None)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def passwords(gateway: ProxyProcess) -> dict[str, str]:
    state = str(gateway.state_dir)
    return {"lan": one_time_password(classgate("teachers", "add", "lan", "--groups", "class-10a", "--state-dir", state)),
            "hieu": one_time_password(classgate("teachers", "add", "hieu", "--admin", "--state-dir", state))}


@pytest.fixture(scope="module")
def console(gateway: ProxyProcess, passwords: dict[str, str]) -> Iterator[ConsoleProcess]:
    c = ConsoleProcess(gateway.state_dir, gateway.metrics_port, gateway.state_dir.parent / "console.log")
    yield c
    c.stop()


@pytest.fixture(scope="module")
def browser(console: ConsoleProcess) -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian's chromium package)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        assert b.version.split(".")[0] in subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True,
                                                         timeout=30, check=False).stdout  # Debian's, not a download
        yield b
        b.close()


def student_status(gateway: ProxyProcess, url: str = "http://social.test/") -> int:
    return curl(gateway.url, url, source=STUDENT, timeout=20).status


def first_sign_in(page: Page, console: ConsoleProcess, name: str, one_time: str) -> None:
    """Sign in on the form shown with the one-time password, then choose NEW_PASSWORD as the console asks."""
    page.fill("#name", name)
    page.fill("#password", one_time)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url("**/password")
    page.fill("#password", NEW_PASSWORD)
    page.fill("#repeat", NEW_PASSWORD)
    page.get_by_role("button", name="Lưu").click()
    page.wait_for_url(f"{console.url}/")


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)


def test_the_console_is_https_with_the_school_cas_certificate(gateway: ProxyProcess, console: ConsoleProcess) -> None:
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", str(gateway.school_ca), "-o", "/dev/null",
                        "-w", "%{http_code}", f"{console.url}/login"], capture_output=True, text=True, timeout=20,
                       check=False)
    assert r.returncode == 0 and r.stdout == "200", r.stderr
    plain = subprocess.run(["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
                            f"http://127.0.0.1:{console.port}/login"], capture_output=True, text=True, timeout=20,
                           check=False)
    assert plain.stdout != "200"  # no plain HTTP


def test_a_teacher_unblocks_a_site_for_the_class_then_ends_it(gateway: ProxyProcess, console: ConsoleProcess,
                                                             browser, passwords: dict[str, str]) -> None:
    assert student_status(gateway) == 403
    context = browser.new_context(locale="vi-VN", viewport={"width": 412, "height": 915}, ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto(f"{console.url}/")
        assert page.url.endswith("/login") and page.locator("h1").inner_text() == "Đăng nhập"
        shot(page, "login-vi-412x915")
        first_sign_in(page, console, "lan", passwords["lan"])
        assert "class-10a" in page.inner_text("body") and "class-10b" not in page.inner_text("body")
        cookie = next(c for c in context.cookies() if c["name"] == "classgate_console")
        assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"

        # The student's block page gives a code; the teacher types it and the form fills itself in.
        blocked = curl(gateway.url, "http://social.test/", source=STUDENT, timeout=20)
        code = re.search(r"[A-Z2-9]{4}-[A-Z2-9]{4}", blocked.text.split('class="ask"', 1)[-1])
        assert blocked.status == 403 and code is not None, blocked.text
        page.fill("#code", code.group().lower())
        page.get_by_role("button", name="Điền vào biểu mẫu").click()
        page.wait_for_url("**/?code=*")
        assert page.input_value("#sites") == "social.test" and page.input_value("#group") == "class-10a"
        assert page.input_value("#kind") == "allow"
        shot(page, "teacher-code-filled-412x915")
        page.select_option("#duration", "30m")
        page.get_by_role("button", name="Bắt đầu").click()
        page.wait_for_selector("p.ok")
        assert "Đã bắt đầu: Cho phép trang: social.test cho lớp class-10a" in page.inner_text("p.ok")
        took = seconds_until(lambda: student_status(gateway) == 200)
        assert took <= EFFECTIVE_WITHIN, f"the unblock took {took:.2f}s to reach the gateway"
        shot(page, "teacher-allowed-412x915")

        page.get_by_role("button", name="Kết thúc ngay").click()
        page.wait_for_selector("text=Không có thao tác nào đang có hiệu lực.")
        took = seconds_until(lambda: student_status(gateway) == 403)
        assert took <= EFFECTIVE_WITHIN, f"the end took {took:.2f}s to reach the gateway"
        shot(page, "teacher-ended-412x915")
        audit = (gateway.state_dir / "audit" / "teacher-actions.log").read_text()
        assert '"event": "start"' in audit and '"event": "end"' in audit and STUDENT not in audit
    finally:
        context.close()


def test_an_admin_sees_the_usage_and_why_a_site_is_blocked(gateway: ProxyProcess, console: ConsoleProcess,
                                                           browser, passwords: dict[str, str]) -> None:
    for _ in range(3):
        student_status(gateway)  # some traffic to count
    for device in ("127.0.0.3", "127.0.0.4", "127.0.0.5"):  # enough devices for the k-anonymous top sites
        assert curl(gateway.url, "http://allowed.test/", source=device, timeout=20).status == 200
    context = browser.new_context(locale="vi-VN", viewport={"width": 1100, "height": 900}, ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto(f"{console.url}/login")
        first_sign_in(page, console, "hieu", passwords["hieu"])
        page.goto(f"{console.url}/admin")
        body = page.text_content("body") or ""  # text_content: as written, not as CSS capitalises it
        assert "Phiên bản chính sách" in body and "Yêu cầu theo danh mục" in body
        assert page.locator("svg rect").count() >= 2  # the charts, drawn from the gateway's own /metrics
        assert "allowed.test" in body and "social.test" not in body  # one device asked for social.test
        page.fill("#url", "http://social.test/feed")
        page.fill("#client", STUDENT)
        page.get_by_role("button", name="Kiểm tra").click()
        result = page.inner_text("#check-result")
        assert "CHẶN" in result and "no-social" in result and "class-10a" in result
        shot(page, "admin-1100x900")
        page.get_by_role("button", name="English").click()
        assert page.locator("h1").first.inner_text() == "Why is this blocked?"
        shot(page, "admin-en-1100x900")
    finally:
        context.close()


def test_a_student_reaches_no_teacher_page_and_guessing_locks(gateway: ProxyProcess, console: ConsoleProcess,
                                                              browser) -> None:
    context = browser.new_context(locale="vi-VN", viewport={"width": 412, "height": 915}, ignore_https_errors=True)
    try:
        page = context.new_page()
        for path in ("/", "/admin", "/password"):
            page.goto(f"{console.url}{path}")
            assert page.url.endswith("/login"), path
        for _ in range(ACCOUNT_FAILURES):
            page.fill("#name", "lan")
            page.fill("#password", "doan-mat-khau")
            page.get_by_role("button", name="Đăng nhập").click()
            page.wait_for_load_state()
        assert "Đăng nhập sai quá nhiều lần" in page.inner_text("body") or "không đúng" in page.inner_text("body")
        page.fill("#name", "lan")
        page.fill("#password", NEW_PASSWORD)  # the right one: refused while locked
        page.get_by_role("button", name="Đăng nhập").click()
        page.wait_for_load_state()
        assert "Đăng nhập sai quá nhiều lần" in page.inner_text("[role=alert]")
        assert page.url.endswith("/login")
        shot(page, "locked-412x915")
    finally:
        context.close()
    assert shutil.which("curl")
