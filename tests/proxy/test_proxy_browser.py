"""A real browser (headless Chromium) loads a blocked page through the proxy; the PNG is kept."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.proxy.proxytest_support import ARTIFACTS, TEST_POLICY, ProxyProcess

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def chromium(args: list[str], proxy_port: int, profile, timeout: float = 60) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--proxy-server=127.0.0.1:{proxy_port}",
           # Chromium bypasses proxies for loopback by default; the test's client is the loopback.
           "--proxy-bypass-list=<-loopback>", "--window-size=412,915",
           # A Vietnamese browser (Chromium otherwise asks for en-US, which gets the English page).
           "--lang=vi-VN", "--accept-lang=vi-VN,vi", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def student_proxy(tmp_path_factory, origin, origin_pki):
    # Chromium cannot pick a source address, so this proxy's policy puts 127.0.0.1 in "students".
    d = tmp_path_factory.mktemp("browser")
    policy = d / "policy.yaml"
    policy.write_text(TEST_POLICY.replace("127.0.0.3/32", "127.0.0.1/32"), encoding="utf-8")
    p = ProxyProcess(policy, d / "state", origin, origin_pki.ca)
    yield p
    p.stop()


@pytest.mark.skipif(not shutil.which("chromium") and not shutil.which("/usr/bin/chromium"), reason="no chromium")
def test_blocked_page_in_a_real_browser(student_proxy, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    url = "http://blocked.test/casino?bet=<b>1</b>"
    dom = chromium(["--dump-dom", url], student_proxy.port, tmp_path / "p1")
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout
    assert "Trang này đã bị chặn" in text
    assert "Cờ bạc" in text
    assert "harmful" in text
    assert "Phòng CNTT - cntt@school.test" in text
    assert "<b>1</b>" not in text  # reflected inert
    png = ARTIFACTS / "proxy-blockpage-vi-412x915.png"
    shot = chromium([f"--screenshot={png}", url], student_proxy.port, tmp_path / "p2")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert png.exists() and png.stat().st_size > 5000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_https_block_page_in_a_real_browser(student_proxy, tmp_path):
    # Chromium does not trust the school CA here, so ignore certificate errors for the screenshot
    # only: what is checked is that an intercepted HTTPS request shows the block page.
    ARTIFACTS.mkdir(exist_ok=True)
    png = ARTIFACTS / "proxy-blockpage-https-412x915.png"
    shot = chromium(["--ignore-certificate-errors", f"--screenshot={png}", "https://video.test/shorts/abc"],
                    student_proxy.port, tmp_path / "p3")
    assert shot.returncode == 0, shot.stderr[-2000:]
    dom = chromium(["--ignore-certificate-errors", "--dump-dom", "https://video.test/shorts/abc"],
                   student_proxy.port, tmp_path / "p4")
    assert "no-shorts" in dom.stdout and "Trang này đã bị chặn" in dom.stdout
