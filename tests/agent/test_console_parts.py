"""The console's parts on their own: its certificate, the bounds of its in-memory tables, the usage summary,
the charts and the word tables."""

from __future__ import annotations

import datetime as dt
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from classgate.agent.console.certificate import (
    RENEW_DAYS,
    VALID_DAYS,
    certificate_names,
    ensure_certificate,
)
from classgate.agent.console.charts import BAR_WIDTH, MAX_ROWS, bar_chart
from classgate.agent.console.sessions import Sessions
from classgate.agent.console.throttle import LoginThrottle
from classgate.agent.console.usage import summarise
from classgate.agent.console.words import EN, VI
from classgate.proxy.ca import ensure_ca

NAMES = ("console.school.test", "10.0.0.1")
NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)


def _san(cert: x509.Certificate) -> set[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {*san.get_values_for_type(x509.DNSName), *(str(a) for a in san.get_values_for_type(x509.IPAddress))}


def test_the_certificate_is_the_school_cas_and_kept_private(tmp_path: Path) -> None:
    made = ensure_certificate(tmp_path, NAMES, now=NOW)
    assert made.issued
    ca = ensure_ca(tmp_path)
    made.certificate.verify_directly_issued_by(ca.certificate)
    assert _san(made.certificate) == set(NAMES)
    assert made.certificate.not_valid_after_utc - NOW == dt.timedelta(days=VALID_DAYS)
    assert stat.S_IMODE(made.key_file.stat().st_mode) == 0o600
    # A TLS client that trusts only the school CA accepts the chain the server presents.
    context = ssl.create_default_context(cafile=str(ca.cert_file))
    context.load_verify_locations(cadata=made.cert_file.read_text())


@pytest.mark.parametrize(("later", "names", "new_ca", "issued"), [
    (dt.timedelta(days=1), NAMES, False, False),  # kept
    (dt.timedelta(days=VALID_DAYS - RENEW_DAYS - 1), NAMES, False, False),  # still more than RENEW_DAYS left
    (dt.timedelta(days=VALID_DAYS - RENEW_DAYS + 1), NAMES, False, True),  # renewed before it expires
    (dt.timedelta(days=VALID_DAYS + 5), NAMES, False, True),  # expired (a gateway off for the summer)
    (dt.timedelta(days=1), (*NAMES, "gw.school.test"), False, True),  # a name added
    (dt.timedelta(days=1), NAMES, True, True),  # the school CA was made anew
])
def test_the_certificate_is_issued_again_when_it_must_be(tmp_path: Path, later: dt.timedelta,
                                                         names: tuple[str, ...], new_ca: bool, issued: bool) -> None:
    first = ensure_certificate(tmp_path, NAMES, now=NOW)
    if new_ca:
        for f in (tmp_path / "ca").iterdir():
            f.unlink()
    again = ensure_certificate(tmp_path, names, now=NOW + later)
    assert again.issued is issued
    assert (again.certificate.serial_number != first.certificate.serial_number) is issued
    again.certificate.verify_directly_issued_by(ensure_ca(tmp_path).certificate)


@pytest.mark.parametrize(("host", "extra", "included", "excluded"), [
    ("0.0.0.0", (), {"localhost", "127.0.0.1", "::1"}, {"0.0.0.0"}),
    ("10.0.0.1", ("Console.School.Test",), {"10.0.0.1", "console.school.test"}, set()),
    ("::", (), {"::1"}, {"::"}),
])
def test_certificate_names(host: str, extra: tuple[str, ...], included: set[str], excluded: set[str]) -> None:
    names = set(certificate_names(host, extra))
    assert included <= names and not excluded & names


def test_sessions_are_bounded_and_a_flood_of_sign_in_forms_evicts_no_teacher() -> None:
    sessions = Sessions()
    teacher = sessions.sign_in(sessions.new(), "lan")
    for _ in range(5000):
        sessions.new()
    assert len(sessions) <= 2000 + 500
    assert sessions.get(teacher.id) is not None


def test_the_throttle_is_bounded() -> None:
    throttle = LoginThrottle(max_keys=100)
    for i in range(1000):
        throttle.failed(f"name{i}", f"10.0.{i // 256}.{i % 256}")
    assert len(throttle) == 100


EXPOSITION = """\
# TYPE classgate_requests_total counter
classgate_requests_total{action="allow",category="social",group="class-10a"} 7.0
classgate_requests_total{action="block",category="social",group="class-10b"} 3.0
classgate_requests_total{action="allow",category="uncategorized",group="class-10b"} 5.0
# TYPE classgate_filter_errors_total counter
classgate_filter_errors_total{stage="request"} 2.0
classgate_filter_errors_total{stage="tls"} 0.0
# TYPE classgate_policy_info gauge
classgate_policy_info{source="file",version="abc123"} 1.0
# TYPE classgate_sync_failures_total counter
classgate_sync_failures_total{reason="network"} 4.0
"""
STATS = {"since": 1796184899.0, "min_clients": 3,
         "categories": {"social": {"requests": 10, "top": [{"domain": "social.test", "requests": 9}]},
                        "uncategorized": {"requests": 5, "top": []}}}


def test_usage_summary() -> None:
    usage = summarise(EXPOSITION, STATS)
    assert usage.requests_by_category == {"social": 10, "uncategorized": 5}
    assert usage.blocks_by_category == {"social": 3}
    assert usage.requests_by_group == {"class-10b": 8, "class-10a": 7}
    assert usage.blocks_by_group == {"class-10b": 3}
    assert usage.filter_errors == {"request": 2, "tls": 0}
    assert usage.policy_version == "abc123" and usage.sync_failures == 4 and usage.sync_last_success is None
    assert usage.top_sites == {"social": [("social.test", 9)]} and usage.min_clients == 3


@pytest.mark.parametrize(("totals", "blocked", "widths"), [
    ({"a": 10, "b": 5, "c": 0}, {"a": 5}, [(BAR_WIDTH, BAR_WIDTH // 2), (BAR_WIDTH // 2, 0), (0, 0)]),
    ({}, {}, []),
    ({"a": 3}, {"a": 9}, [(BAR_WIDTH, BAR_WIDTH)]),  # a blocked count over the total (a scrape between two) is capped
])
def test_bar_chart(totals: dict[str, int], blocked: dict[str, int], widths: list[tuple[int, int]]) -> None:
    chart = bar_chart(totals, blocked)
    assert [(b.width, b.blocked_width) for b in chart.bars] == widths
    assert chart.height >= 1


def test_a_chart_has_at_most_max_rows() -> None:
    assert len(bar_chart({str(i): i for i in range(50)}).bars) == MAX_ROWS


def test_both_languages_have_every_sentence() -> None:
    assert VI.keys() == EN.keys()
    assert all(VI[k] and EN[k] for k in VI)


# -- today's figures: the counters less what they were at local midnight -----------------------------------

HCM = dt.timezone(dt.timedelta(hours=7))
STARTED_YESTERDAY = dt.datetime(2026, 12, 1, 15, 0, tzinfo=HCM).timestamp()


def _usage_at(counts: dict[tuple[str, str, str], int], since: float):
    from classgate.agent.console.usage import Usage, with_counts

    return with_counts(Usage(since=since), counts)


@pytest.mark.parametrize(("case", "since", "looks", "requests_today", "from_hour"), [
    # (local hour of each look, social requests the gateway counted by then); the last look is what is shown
    ("a gateway running since yesterday: today's are those after the midnight look", STARTED_YESTERDAY,
     [(0.01, 100), (9.0, 130)], 30, 0.01),
    ("the first look after midnight is late: figures from then, and the page says so", STARTED_YESTERDAY,
     [(8.0, 120), (9.0, 130)], 10, 8.0),
    ("a gateway started this morning: everything it counted is today's", dt.datetime(
        2026, 12, 2, 7, 0, tzinfo=HCM).timestamp(), [(9.0, 40)], 40, 7.0),
    ("a gateway restarted today: its new counters are all today's", dt.datetime(
        2026, 12, 2, 10, 0, tzinfo=HCM).timestamp(), [(0.01, 100), (11.0, 5)], 5, 10.0),
    ("the next day starts again at its midnight", STARTED_YESTERDAY, [(0.01, 100), (23.9, 300), (24.02, 310),
                                                                      (25.0, 320)], 10, 24.02),
])
def test_todays_requests(tmp_path: Path, case: str, since: float, looks: list[tuple[float, int]],
                         requests_today: int, from_hour: float) -> None:
    from classgate.agent.console.today import today

    midnight = dt.datetime(2026, 12, 2, 0, 0, tzinfo=HCM).timestamp()
    # The restart case: the gateway's start moves with the look that sees it.
    shown = None
    for hour, total in looks:
        now = midnight + hour * 3600
        start = since if now >= since else STARTED_YESTERDAY
        shown = today(_usage_at({("social", "class-10a", "allow"): total}, start), tmp_path, HCM, now)
    assert shown is not None
    assert shown.requests_by_category == {"social": requests_today}, case
    assert shown.figures_from == pytest.approx(midnight + from_hour * 3600), case


def test_a_broken_baseline_file_starts_today_again_from_now(tmp_path: Path) -> None:
    from classgate.agent.console.today import FILE, today

    (tmp_path / FILE).parent.mkdir(parents=True)
    (tmp_path / FILE).write_text("{not json")
    now = dt.datetime(2026, 12, 2, 9, 0, tzinfo=HCM).timestamp()
    shown = today(_usage_at({("social", "class-10a", "block"): 50}, STARTED_YESTERDAY), tmp_path, HCM, now)
    assert shown.requests_by_category == {} and shown.figures_from == now
    assert oct((tmp_path / FILE).stat().st_mode & 0o777) == "0o600"
