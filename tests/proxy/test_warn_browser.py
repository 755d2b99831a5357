"""A real browser (Playwright driving Debian's Chromium) through a real gateway: warn page -> "continue" -> the site.

Chromium cannot pick a source address, so this gateway's policy puts 127.0.0.1 in "students". It does not trust
the school CA here either: HTTPS runs with certificate errors ignored, which is enough to show that an
intercepted HTTPS request gets the warn page and that the cookie is Secure there. Screenshots are kept in
test-artifacts/.
"""

from __future__ import annotations

import shutil

import pytest

from classgate.proxy.warn_token import COOKIE_NAME
from tests.proxy.proxytest_support import ARTIFACTS
from tests.proxy.test_warn_e2e import WARN_POLICY, gateway_with

pytestmark = pytest.mark.e2e

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser_proxy(tmp_path_factory, origin, origin_pki):
    policy = WARN_POLICY.replace("127.0.0.3/32", "127.0.0.1/32")
    with gateway_with(policy, tmp_path_factory.mktemp("warn-browser"), origin, origin_pki.ca) as p:
        yield p


@pytest.fixture(scope="module")
def browser(browser_proxy):
    if not shutil.which(CHROMIUM):
        pytest.skip("no chromium")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-quic"],
                              proxy={"server": f"http://127.0.0.1:{browser_proxy.port}"})
        yield b
        b.close()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_warn_continue_then_the_page_loads(browser, origin, scheme):
    ARTIFACTS.mkdir(exist_ok=True)
    path = f"/browser-{scheme}?q=1"
    context = browser.new_context(locale="vi-VN", viewport={"width": 412, "height": 915}, ignore_https_errors=True)
    try:
        page = context.new_page()
        first = page.goto(f"{scheme}://social.test{path}")
        assert first is not None and first.status == 403
        assert page.locator("h1").inner_text() == "Bạn có cần trang này không?"
        assert "Mạng xã hội làm mất tập trung" in page.inner_text("body")
        page.screenshot(path=str(ARTIFACTS / f"warn-page-{scheme}-412x915.png"), full_page=True)
        assert origin.find("social.test", f"/browser-{scheme}") == []

        with page.expect_navigation():
            page.get_by_role("button", name="Tiếp tục vào trang").click()
        assert '"origin": "ok"' in page.inner_text("body")
        assert page.url == f"{scheme}://social.test{path}"
        seen = origin.find("social.test", f"/browser-{scheme}")
        assert len(seen) == 1 and COOKIE_NAME not in seen[0].headers.get("cookie", "")
        page.screenshot(path=str(ARTIFACTS / f"warn-continued-{scheme}-412x915.png"))

        cookie = next(c for c in context.cookies() if c["name"] == COOKIE_NAME)
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
        assert cookie["secure"] is (scheme == "https")
        assert cookie["domain"].lstrip(".") == "social.test"
        assert page.evaluate("document.cookie").find(COOKIE_NAME) < 0  # no page script can read it

        # The whole site is open now (another path; over HTTP another subdomain too: the test origin's
        # certificate does not name www.social.test), in this browser only.
        host = "www.social.test" if scheme == "http" else "social.test"
        other = page.goto(f"{scheme}://{host}/other-{scheme}")
        assert other is not None and other.status == 200 and '"origin": "ok"' in page.inner_text("body")
    finally:
        context.close()
    fresh = browser.new_context(ignore_https_errors=True)
    try:
        again = fresh.new_page().goto(f"{scheme}://social.test{path}")
        assert again is not None and again.status == 403  # a browser that never continued is still warned
    finally:
        fresh.close()


def test_block_page_shows_the_ask_code(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(locale="vi-VN", viewport={"width": 412, "height": 915})
    try:
        page = context.new_page()
        answer = page.goto("http://blocked.test/casino")
        assert answer is not None and answer.status == 403
        ask = page.locator("p.ask")
        assert ask.is_visible() and "thầy cô" in ask.inner_text()
        code = ask.locator("strong").inner_text()
        assert len(code) == 9 and code[4] == "-"
        page.screenshot(path=str(ARTIFACTS / "blockpage-ask-code-412x915.png"), full_page=True)
    finally:
        context.close()
