"""The resolver's and ECH's policy keys: `dns.block_answer`, `tls.ech`, `tls.ech_fronts` (policies/dns_settings.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from classgate.policies.document import read_document
from classgate.policies.errors import PolicyError
from classgate.policies.model import DEFAULT_ECH_FRONTS

HEAD = "classgate: 1\nname: t\n"
SCHOOL = "classgate: 1\noverlay: true\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("department", "school", "block_answer", "ech", "extra_fronts"),
    [
        ("", None, "gateway", "refuse", set()),  # the defaults, in the types
        ("dns: {block_answer: nxdomain}\n", None, "nxdomain", "refuse", set()),
        ("tls: {ech: allow}\n", None, "gateway", "allow", set()),
        ("tls: {ech_fronts: [ECH.Example-CDN.net., cdn2.test]}\n", None, "gateway", "refuse",
         {"ech.example-cdn.net", "cdn2.test"}),
        # A school may pick the answer, add fronts and refuse what the Department allows...
        ("tls: {ech: allow}\n", "dns: {block_answer: nxdomain}\ntls: {ech: refuse, ech_fronts: [a.test]}\n",
         "nxdomain", "refuse", {"a.test"}),
        # ...and its own tls section keeps the Department's ECH settings it does not mention.
        ("tls: {ech: allow, ech_fronts: [d.test]}\n", "tls: {inspect_groups: [default]}\n", "gateway", "allow",
         {"d.test"}),
        ("dns: {block_answer: nxdomain}\n", "dns: {block_answer: gateway}\n", "gateway", "refuse", set()),
    ],
)
def test_settings(tmp_path: Path, department: str, school: str | None, block_answer: str, ech: str,
                  extra_fronts: set[str]) -> None:
    overlay = write(tmp_path, "school.yaml", SCHOOL + school) if school is not None else None
    doc = read_document(write(tmp_path, "policy.yaml", HEAD + department), overlay)
    assert (doc.dns.block_answer, doc.tls.ech, doc.tls.ech_fronts) == (block_answer, ech,
                                                                        DEFAULT_ECH_FRONTS | extra_fronts)


@pytest.mark.parametrize(
    ("department", "school", "message"),
    [
        ("dns: {block_answer: refused}\n", None, "3:21: 'refused' is not one of gateway, nxdomain"),
        ("dns: {blocked: nxdomain}\n", None, "3:7: unknown key 'blocked' in dns"),
        ("tls: {ech: block}\n", None, "3:12: 'block' is not one of refuse, allow"),
        ("tls: {ech_fronts: cloudflare-ech.com}\n", None, "3:19: expected a list"),
        ("tls: {ech_fronts: ['a b.test']}\n", None, "3:20: tls.ech_fronts: 'a b.test' is not a host name"),
        ("", "tls: {ech: allow}\n", "3:12: tls.ech: a school overlay cannot loosen the Department's 'refuse'"),
    ],
)
def test_errors_say_where_and_what(tmp_path: Path, department: str, school: str | None, message: str) -> None:
    overlay = write(tmp_path, "school.yaml", SCHOOL + school) if school is not None else None
    with pytest.raises(PolicyError) as caught:
        read_document(write(tmp_path, "policy.yaml", HEAD + department), overlay)
    assert message in str(caught.value), str(caught.value)
