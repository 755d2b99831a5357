"""policies/lists/check.py: is a file a list of the format it claims? And a source's `url` in the policy."""

from __future__ import annotations

import gzip

import pytest

from classgate.policies.document import read_document
from classgate.policies.errors import PolicyError
from classgate.policies.lists import read_list
from classgate.policies.lists.check import check_list
from classgate.policies.model import Source

HOSTS = b"# Title: hostsVN\n0.0.0.0 fb88.com\n0.0.0.0 789bet.com go88.club\n"
DOMAINS = b"# hostsVN\nfb88.com\n789bet.com\n"
ADBLOCK = b"! Title: hostsVN\n||fb88.com^\n||789bet.com^\n"
HTML = b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>\n"
JUNK = b"".join(b"junk line %d!\n" % i for i in range(3))

# (format, file content, expected problem, message fragment, entries)
CASES = [
    ("hosts", HOSTS, None, "", 3),
    ("domains", DOMAINS, None, "", 2),
    ("adblock", ADBLOCK, None, "", 2),
    ("hosts", DOMAINS, None, "", 2),  # bare names are common in hosts-style lists
    ("domains", b"\xef\xbb\xbf" + DOMAINS * 20, None, "", 40),  # a byte order mark: one junk line
    ("domains", DOMAINS * 20 + JUNK, None, "", 40),  # a few junk lines: under 10% (entries, not distinct)
    ("domains", b"", "empty", "no entries", 0),
    ("hosts", b"# Title: hostsVN\n# nothing\n", "empty", "no entries", 0),
    ("domains", HOSTS, "format", "2 of 2 lines are not one domain (more than 10%): not a domains list", 0),
    ("adblock", HOSTS, "format", "lines are not a ||domain^ rule", 0),
    ("domains", ADBLOCK, "format", "not a domains list", 0),
    ("hosts", HTML, "format", "list.txt: an HTML or XML page, not a hosts list", 0),
    ("domains", b"\n\n  <html>\n", "format", "an HTML or XML page", 0),
    ("domains", gzip.compress(DOMAINS), "format", "binary data, not a domains list", 0),
    ("domains", DOMAINS + JUNK, "format", "3 of 5 lines", 2),
]


@pytest.mark.parametrize(("fmt", "content", "problem", "message", "entries"), CASES)
def test_check_list(tmp_path, fmt, content, problem, message, entries):
    path = tmp_path / "list.txt"
    path.write_bytes(content)
    result = check_list(read_list(Source("s", fmt, path)), fmt)
    assert (result.problem, result.entries) == (problem, entries)
    assert message in result.message


def test_check_list_of_a_ut1_folder(tmp_path):
    (tmp_path / "gambling").mkdir()
    (tmp_path / "gambling" / "domains").write_bytes(HTML)
    (tmp_path / "gambling" / "urls").write_bytes(b"casino.example/poker\n")
    result = check_list(read_list(Source("ut1", "ut1", tmp_path), "gambling"), "ut1")
    assert (result.problem, result.message) == ("format", "domains: an HTML or XML page, not a ut1 list")


HEAD = "classgate: 1\nname: t\n"

# (policy after HEAD, overlay after its head or None, expected "line:col: message" or None when valid)
URL_CASES = [
    ("sources:\n  s: {format: domains, path: l.txt, url: 'https://lists.example/gambling.txt'}\n", None, None),
    ("sources:\n  s: {format: domains, path: l.txt, url: 'http://mirror.lan/l.txt'}\n", None, None),
    ("sources:\n  s: {format: domains, path: l.txt, url: 'ftp://lists.example/l'}\n", None,
     "4:42: 'ftp://lists.example/l' is not valid here; a source url starts with https:// (or http://)"),
    ("sources:\n  s: {format: domains, path: l.txt, url: 'lists.example/l'}\n", None, "is not valid here"),
    ("sources:\n  s: {format: domains, path: l.txt, url: 'https:// x'}\n", None, "is not valid here"),
    ("sources:\n  s: {format: domains, path: l.txt, urls: 'https://x/'}\n", None,
     "4:37: unknown key 'urls' in a source; did you mean 'url'?"),
    ("sources:\n  s: {format: domains, path: missing.txt, url: 'https://x.example/l'}\n", None,
     "source 's': no such file {D}/missing.txt; it has a url: download it with `classgate lists fetch --policy FILE`"),
    ("", "sources:\n  mine: {format: domains, path: l.txt, url: 'https://x.example/l'}\n",
     "4:45: source 'mine': `url` is for the Department's `classgate lists fetch`; a gateway never downloads lists"),
]


@pytest.mark.parametrize(("text", "overlay", "expected"), URL_CASES)
def test_a_source_url(tmp_path, text, overlay, expected):
    (tmp_path / "l.txt").write_text("casino.example\n")
    policy = tmp_path / "department.yaml"
    policy.write_text(HEAD + text)
    school = None
    if overlay is not None:
        school = tmp_path / "school.yaml"
        school.write_text("classgate: 1\noverlay: true\n" + overlay)
    if expected is None:
        doc = read_document(policy, school)
        assert doc.sources["s"].url is not None
        return
    with pytest.raises(PolicyError) as err:
        read_document(policy, school)
    shown = "\n".join(str(p) for p in err.value.problems)
    assert expected.replace("{D}", str(tmp_path.resolve())) in shown
