"""`classgate console` as a process: every exit path (a taken port, a bad address, a state dir it cannot use,
SIGTERM), with the message an admin acts on and never a traceback."""

from __future__ import annotations

import datetime as dt
import signal
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
from cryptography import x509

from classgate.agent.console.certificate import RENEW_DAYS, VALID_DAYS, certificate_names, ensure_certificate
from classgate.agent.console.server import ConsoleServer
from classgate.agent.console.settings import ConsoleSettings
from classgate.proxy.address import Address
from tests.proxy.proxytest_support import CLASSGATE, free_port, wait_port


def run_console(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLASSGATE), "console", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def test_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_console("--listen", f"127.0.0.1:{port}", "--state-dir", str(tmp_path / "state"))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("listen", "message"), [("nowhere", "the port must be a number"), ("127.0.0.1:99999", "port")])
def test_a_bad_listen_address(tmp_path: Path, listen: str, message: str) -> None:
    result = run_console("--listen", listen, "--state-dir", str(tmp_path / "state"))
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_a_state_dir_it_cannot_use(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_console("--listen", f"127.0.0.1:{free_port()}", "--state-dir", str(blocker / "state"))
    assert result.returncode == 1
    assert "school CA" in result.stderr and "Traceback" not in result.stderr


def test_it_serves_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([str(CLASSGATE), "console", "--listen", f"127.0.0.1:{port}", "--state-dir",
                             str(tmp_path / "state")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, proc, timeout=60)
        assert (tmp_path / "state" / "console" / "server.pem").exists()
        # A student's device speaking plain HTTP, then a handshake the server refuses: nothing names it.
        for cmd in (["curl", "-sS", "--interface", "127.0.0.9", "--max-time", "5", f"http://127.0.0.1:{port}/"],
                    ["curl", "-sS", "--interface", "127.0.0.9", "--max-time", "5", "--tls-max", "1.1", "-k",
                     f"https://127.0.0.1:{port}/"]):
            assert subprocess.run(cmd, capture_output=True, timeout=20, check=False).returncode != 0
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert f"https://127.0.0.1:{port}/" in out and "Traceback" not in err
    assert "127.0.0.9" not in out + err


def _served_serial(port: int, ca: Path) -> int:
    """The serial of the certificate the server presents (issued by the school CA: checked here)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # Not verified by the handshake: the renewed one is dated in the test's future. Checked below instead.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    served = x509.load_der_x509_certificate(der)
    served.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.read_bytes()))
    return served.serial_number


def test_a_renewed_certificate_is_served_without_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    settings = ConsoleSettings(state_dir=state, listen=Address("127.0.0.1", 0))
    names = certificate_names("127.0.0.1")
    # A certificate issued long ago: RENEW_DAYS + 2 days left.
    old = ensure_certificate(state, names, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=VALID_DAYS - RENEW_DAYS - 2))
    server = ConsoleServer(settings)
    assert not server.certificate.issued  # still valid at start: kept
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        ca = state / "ca" / "mitmproxy-ca-cert.pem"
        wait_port(server.port, timeout=30)
        assert _served_serial(server.port, ca) == old.certificate.serial_number
        # Three days later, as the server's check every CHECK_SECONDS sees them: renewed, and served.
        renewed = server.renew(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=3))
        assert renewed is not None and renewed.issued
        fresh = renewed.certificate.serial_number
        assert _served_serial(server.port, ca) == fresh != old.certificate.serial_number
    finally:
        server.stop()
        thread.join(10)
