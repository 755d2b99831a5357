"""The piecewise index compiler writes the same bytes as before: against the first builder's own output
(kept in index_golden/, written by `build_index` of commit 5b124a6), against a plain reference
(index_reference.py), whole or in pieces, in memory or through the cache on real and generated lists."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from classgate.policies.document import read_document
from classgate.policies.errors import Problem
from classgate.policies.index.build import PIECE_BYTES, content_digest, load_index, plan_lists
from classgate.policies.index.builder import IndexBuilder
from classgate.policies.index.table import DomainIndex, IndexInput, build_index
from classgate.policies.lists import read_list
from tests.policies.index_reference import reference_index

GOLDEN = Path(__file__).parent / "index_golden"


def _seventy_lists() -> list[IndexInput]:
    # More lists than one 64-bit mask word, keys shared by neighbours (many combinations over both words).
    return [
        IndexInput(f"l{i}", [f"d{k}.example" for k in range(i * 7, i * 7 + 20)] + (["localhost"] if i == 5 else []),
                   [f"site{i % 4}.example/p{i % 3}"] if i % 2 else [])
        for i in range(70)
    ]


CASES: dict[str, list[IndexInput]] = {
    "three-lists": [
        IndexInput("a", ["shared.example", "only-a.example", "1.2.3.4"], ["site.example/dir", "site.example/?v=1"],
                   junk_lines=2, problems=[Problem("a.txt", 3, 1, "not a domain: 'x y'", "warning")]),
        IndexInput("b", ["shared.example", "only-b.example", "only-b.example"], []),
        IndexInput("c", [], ["site.example/dir/sub", "other.example"]),
    ],
    "seventy-lists": _seventy_lists(),
    "one-empty-list": [IndexInput("empty", [])],
    "no-lists": [],
    "single-label-url-host": [IndexInput("u", ["a.example"], ["intranet/wiki"])],
    "spread-over-every-run": [IndexInput("big", [f"h{i}.example{i % 13}.com" for i in range(20_000)]),
                              IndexInput("half", [f"h{i}.example{i % 13}.com" for i in range(0, 20_000, 2)])],
}
GOLDEN_CASES = ("three-lists", "seventy-lists", "one-empty-list")


@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_same_bytes_as_the_first_builder(case: str) -> None:
    assert build_index(CASES[case]) == (GOLDEN / f"{case}.cgidx").read_bytes()


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_bytes_as_the_reference(case: str) -> None:
    assert build_index(CASES[case]) == reference_index(CASES[case])


@pytest.mark.parametrize(("case", "seed"), [("three-lists", 1), ("seventy-lists", 2), ("spread-over-every-run", 3)])
def test_pieces_in_any_cut_give_the_same_bytes(case: str, seed: int) -> None:
    rng = random.Random(seed)
    builder = IndexBuilder()
    for lst in CASES[case]:
        list_id = builder.add_list(lst.name)
        entries = [("d", d) for d in lst.domains] + [("u", u) for u in lst.urls]
        entries += rng.sample(entries, len(entries) // 3)  # duplicates landing in other pieces
        rng.shuffle(entries)
        while entries:
            cut = rng.randint(1, 50)
            piece, entries = entries[:cut], entries[cut:]
            builder.add(list_id, [e for k, e in piece if k == "d"], [e for k, e in piece if k == "u"])
        builder.add_junk(list_id, lst.junk_lines, lst.problems)
    assert builder.to_bytes() == reference_index(CASES[case])


def test_written_file_is_the_same_bytes(tmp_path: Path) -> None:
    builder = IndexBuilder()
    builder.add(builder.add_list("x"), [f"d{i}.example" for i in range(5000)])
    builder.write_file(tmp_path / "i.cgidx")
    assert (tmp_path / "i.cgidx").read_bytes() == builder.to_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["i.cgidx"]  # no temp file left behind


def test_too_many_lists_for_a_uint16_set_id() -> None:
    builder = IndexBuilder()
    for i in range(0x10000):
        builder.add_list(f"l{i}")
    builder.add(0xFFFF, ["one.example"])
    with pytest.raises(ValueError, match="65535"):
        builder.to_bytes()


def _compile_through_the_cache(tmp_path: Path, ut1: Path, folders: list[str]) -> tuple[bytes, list[IndexInput]]:
    """A policy with one category per UT1 folder; its index as a gateway compiles it (lists read in pieces,
    written to the cache), and the same lists read whole, as the reference gets them."""
    policy = tmp_path / "policy.yaml"
    categories = "".join(f"  c{i}: {{include: [ut1/{folder}]}}\n" for i, folder in enumerate(folders))
    policy.write_text(f"classgate: 1\nname: t\nsources:\n  ut1: {{format: ut1, path: {ut1}}}\ncategories:\n"
                      f"{categories}default: allow\n")
    doc = read_document(policy)
    refs, _, problems = plan_lists(doc)
    assert not problems
    index, cached = load_index(doc, refs, content_digest(doc, refs), tmp_path / "cache")
    assert not cached and index.path is not None
    whole = []
    for ref in refs:
        assert ref.source is not None
        data = read_list(doc.sources[ref.source], ref.list_name)
        whole.append(IndexInput(data.name, data.domains, data.urls, data.junk_lines, data.problems))
    return index.path.read_bytes(), whole


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_ut1_compiled_through_the_cache_is_the_reference(shared_ut1: Path, tmp_path: Path) -> None:
    folders = sorted(p.name for p in shared_ut1.iterdir() if (p / "domains").is_file() or (p / "urls").is_file())
    compiled, whole = _compile_through_the_cache(tmp_path, shared_ut1, folders)
    assert len(whole) > 64 and sum(len(w.domains) for w in whole) > 1_000_000
    assert compiled == reference_index(whole)


def _generated_lines(rng: random.Random, n: int) -> list[str]:
    lines = [f"{rng.choice('abcdefghij')}{rng.randrange(10**9)}.example.{rng.choice(['com', 'vn', 'org'])}"
             for _ in range(n)]
    for i in range(0, n, n // 60):  # junk (more than the 20 shown per file), comments, upper case, IPs
        lines[i] = rng.choice(["not a domain", "http://x.example/y", "# comment", "", "UPPER.Example.COM",
                               f"10.0.{rng.randrange(256)}.{rng.randrange(256)}", "*.wild.example"])
    return lines + lines[: n // 10]  # duplicates pieces apart


def test_a_list_many_pieces_long_is_the_reference(tmp_path: Path) -> None:
    rng = random.Random(13)
    ut1 = tmp_path / "ut1"
    (ut1 / "big").mkdir(parents=True)
    (ut1 / "big" / "domains").write_bytes("\r\n".join(_generated_lines(rng, 250_000)).encode())
    (ut1 / "big" / "urls").write_text("".join(f"site{i}.example/p/{i}\n" for i in range(2000)) + "bad url\n")
    (ut1 / "clean").mkdir()
    (ut1 / "clean" / "domains").write_text("".join(f"c{i}.example.net\n" for i in range(100_000)))
    assert (ut1 / "big" / "domains").stat().st_size > PIECE_BYTES  # two pieces or more
    compiled, whole = _compile_through_the_cache(tmp_path, ut1, ["big", "clean"])
    assert whole[0].junk_lines > 20 and whole[1].junk_lines == 0
    assert compiled == reference_index(whole)
    assert DomainIndex(compiled).find("upper.example.com") >= 0


def test_an_unwritable_cache_still_gives_the_index(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ut1 = tmp_path / "ut1"
    (ut1 / "cat").mkdir(parents=True)
    (ut1 / "cat" / "domains").write_text("a.example\nb.example\n")
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"classgate: 1\nname: t\nsources:\n  ut1: {{format: ut1, path: {ut1}}}\ncategories:\n"
                      "  c: {include: [ut1/cat]}\ndefault: allow\n")
    doc = read_document(policy)
    refs, _, _ = plan_lists(doc)
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the cache folder should be")
    index, cached = load_index(doc, refs, content_digest(doc, refs), not_a_folder)
    assert (cached, index.path, index.size) == (False, None, 2) and index.find("b.example") >= 0
    assert "cannot cache the compiled index" in caplog.text
