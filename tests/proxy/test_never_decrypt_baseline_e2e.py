"""End to end: the Department's Vietnamese baseline (deploy/department/baseline-vn.yaml, on the real lists) in a
real `classgate run`; its never-decrypt hosts pass through untouched, with the origin's own certificate, even
for devices that trust the school CA, while its other sites are inspected.

The baseline is used as shipped, but for the groups' networks (test client addresses) and `local_services`
(the test origin on 127.0.0.50 stands for the Internet). Without ../shared/data the test is skipped.
"""

from __future__ import annotations

import urllib.request

import pytest

from tests.proxy.proxytest_certs import make_origin_pki
from tests.proxy.proxytest_origin import start_origin
from tests.proxy.proxytest_support import REPO, STUDENT, TEACHER, ProxyProcess, curl, peer_certificate_issuer

pytestmark = pytest.mark.e2e

SHARED = REPO.parent / "shared" / "data"
BASELINE = REPO / "deploy" / "department" / "baseline-vn.yaml"
GROUPS = """\
  teachers: {networks: [10.20.0.0/24]}
  students: {networks: [10.10.0.0/16]}
  phones:   {networks: [10.30.0.0/16, "fd00:30::/64"]}
"""
TEST_GROUPS = """\
  teachers: {networks: [127.0.0.2/32]}
  students: {networks: [127.0.0.3/32]}
  phones:   {networks: [127.0.0.6/32]}
"""

# (client, host, why it is never decrypted); the clock is Monday 09:00, class hours
PASSED_THROUGH = [
    (TEACHER, "portal.vietcombank.com.vn", "bank: a Vietnamese bank"),
    (STUDENT, "ebank.techcombank.com.vn", "bank: a Vietnamese bank"),
    (STUDENT, "payment.momo.vn", "bank: an e-wallet"),
    (STUDENT, "vneid.gov.vn", "government: national electronic identity"),
    (TEACHER, "dichvucong.gov.vn", "government: public services"),
    (STUDENT, "fe2.update.microsoft.com", "os_services: Windows Update pins its certificates"),
    (STUDENT, "play.googleapis.com", "os_services: Google Play"),
    (STUDENT, "api.push.apple.com", "os_services: Apple refuses interception"),
]
INSPECTED = [(TEACHER, "olm.vn"), (STUDENT, "hocmai.vn")]  # education: allowed, and inspected like the rest
NAMES = [host for _, host, _ in PASSED_THROUGH] + [host for _, host in INSPECTED]


@pytest.fixture(scope="module")
def baseline_gateway(tmp_path_factory):
    for needed in (SHARED / "ut1" / "bank" / "domains", SHARED / "hostsvn" / "gambling" / "domain.txt"):
        if not needed.is_file():
            pytest.skip(f"{needed} is absent (see ../shared/data/*/SOURCE.md): the baseline needs the real lists")
    folder = tmp_path_factory.mktemp("baseline-e2e")
    text = BASELINE.read_text(encoding="utf-8")
    assert GROUPS in text
    policy = folder / "department.yaml"
    policy.write_text(text.replace(GROUPS, TEST_GROUPS) + "local_services: [127.0.0.50]\n", encoding="utf-8")
    (folder / "lists").symlink_to(SHARED, target_is_directory=True)
    ca, cert, key = make_origin_pki(folder / "pki", NAMES)
    origin = start_origin(cert, key)
    proxy = ProxyProcess(policy, folder / "state", origin, ca, now="2026-11-23 09:00")
    yield proxy, origin, ca
    proxy.stop()
    origin.close()


@pytest.mark.parametrize(("client", "host", "why"), PASSED_THROUGH, ids=[h for _, h, _ in PASSED_THROUGH])
def test_never_decrypt_hosts_pass_through_with_the_origin_certificate(baseline_gateway, client, host, why):
    proxy, origin, origin_ca = baseline_gateway
    assert peer_certificate_issuer(proxy.port, client, host, origin_ca) == "classgate test origin CA"
    before = len(origin.find(host, "/p"))
    r = curl(proxy.url, f"https://{host}/p?x=1", source=client, cacert=origin_ca,
             headers={"X-Test": "untouched"})
    assert r.returncode == 0 and r.status == 200, r.stderr
    assert f'"host": "{host}"' in r.text
    seen = origin.find(host, "/p")
    assert len(seen) == before + 1
    assert seen[-1].path == "/p?x=1" and seen[-1].headers.get("x-test") == "untouched"


@pytest.mark.parametrize(("client", "host"), INSPECTED, ids=[h for _, h in INSPECTED])
def test_other_allowed_hosts_are_inspected_with_the_school_ca(baseline_gateway, client, host):
    proxy, _, _ = baseline_gateway
    assert peer_certificate_issuer(proxy.port, client, host, proxy.school_ca) == "classgate school CA"


def test_the_metrics_count_the_passthroughs(baseline_gateway):
    proxy, _, origin_ca = baseline_gateway
    curl(proxy.url, "https://payment.momo.vn/m", source=STUDENT, cacert=origin_ca)
    with urllib.request.urlopen(f"http://127.0.0.1:{proxy.metrics_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    line = next(line for line in text.splitlines() if line.startswith('classgate_tls_connections_total{mode="passthrough"}'))
    assert float(line.rsplit(" ", 1)[1]) >= 1
    assert STUDENT not in text and TEACHER not in text
