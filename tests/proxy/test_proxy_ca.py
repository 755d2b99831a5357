"""The school CA: created once in the state dir, key private, exported as PEM or DER by the CLI."""

from __future__ import annotations

import stat

import pytest
from click.testing import CliRunner
from cryptography import x509

from classgate.agent.cli import main
from classgate.proxy.ca import CA_COMMON_NAME, CaError, ensure_ca


def test_created_once_with_a_private_key(tmp_path):
    first = ensure_ca(tmp_path)
    assert stat.S_IMODE(first.key_file.stat().st_mode) == 0o600
    assert first.cert_file.exists()
    assert CA_COMMON_NAME in first.certificate.subject.rfc4514_string()
    assert first.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    again = ensure_ca(tmp_path)
    assert again.certificate == first.certificate  # never regenerated: devices already trust it


def test_loose_key_permissions_are_tightened(tmp_path):
    ca = ensure_ca(tmp_path)
    ca.key_file.chmod(0o644)
    ensure_ca(tmp_path)
    assert stat.S_IMODE(ca.key_file.stat().st_mode) == 0o600


def test_corrupt_ca_is_a_clear_error(tmp_path):
    ca = ensure_ca(tmp_path)
    ca.key_file.write_text("not a certificate")
    with pytest.raises(CaError, match="cannot use the school CA"):
        ensure_ca(tmp_path)


@pytest.mark.parametrize(
    ("args", "loader"),
    [
        (["--format", "pem"], x509.load_pem_x509_certificate),
        ([], x509.load_pem_x509_certificate),
        (["--format", "der"], x509.load_der_x509_certificate),
    ],
)
def test_cli_export(tmp_path, args, loader):
    ca = ensure_ca(tmp_path)
    out = tmp_path / "exported"
    result = CliRunner().invoke(main, ["ca", "export", "--state-dir", str(tmp_path), "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    assert loader(out.read_bytes()) == ca.certificate
    assert b"PRIVATE KEY" not in out.read_bytes()
    assert ca.sha256_fingerprint() in result.output


def test_cli_export_to_stdout_never_includes_the_key(tmp_path):
    ensure_ca(tmp_path)
    result = CliRunner().invoke(main, ["ca", "export", "--state-dir", str(tmp_path)])
    assert result.exit_code == 0
    assert "BEGIN CERTIFICATE" in result.stdout
    assert "PRIVATE KEY" not in result.stdout


def test_cli_export_without_a_ca_is_an_error_that_creates_nothing(tmp_path):
    state = tmp_path / "typo-state"
    result = CliRunner().invoke(main, ["ca", "export", "--state-dir", str(state)])
    assert result.exit_code == 1
    assert "no school CA in" in result.output and "--create" in result.output
    assert not (state / "ca" / "mitmproxy-ca.pem").exists()


def test_cli_export_creates_the_ca_when_asked(tmp_path):
    state = tmp_path / "new-state"
    result = CliRunner().invoke(main, ["ca", "export", "--create", "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    assert "created a new school CA" in result.stderr
    assert (state / "ca" / "mitmproxy-ca.pem").exists()


def test_cli_export_unwritable_output_is_a_clean_error(tmp_path):
    ensure_ca(tmp_path)
    result = CliRunner().invoke(
        main, ["ca", "export", "--state-dir", str(tmp_path), "-o", str(tmp_path / "no" / "such" / "dir" / "f")]
    )
    assert result.exit_code == 1
    assert "cannot write" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("school", "name"),
    [
        (None, "classgate school CA"),
        ("", "classgate school CA"),
        ("THPT Chu Văn An", "THPT Chu Văn An (classgate school CA)"),
    ],
)
def test_a_new_ca_carries_the_schools_name_and_says_it_was_created(tmp_path, school, name):
    from classgate.proxy.ca import ensure_ca

    made = ensure_ca(tmp_path, school)
    assert (made.name, made.created) == (name, True)
    again = ensure_ca(tmp_path, "Another name")  # never renamed: devices trust the one they installed
    assert (again.name, again.created, again.sha256_fingerprint()) == (name, False, made.sha256_fingerprint())


@pytest.mark.parametrize("school", ["x" * 41, "bad\nname"])
def test_a_ca_name_that_cannot_be_used_is_refused(tmp_path, school):
    from classgate.proxy.ca import CaError, ensure_ca

    with pytest.raises(CaError):
        ensure_ca(tmp_path, school)
    assert not (tmp_path / "ca" / "mitmproxy-ca.pem").exists()
