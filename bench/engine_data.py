"""Data for bench_engine.py: the 5M-domain `adult` stand-in, a UT1 tree around it, the policy, the stream.

Everything is generated from fixed seeds, so two runs measure the same thing. Files go to a work folder
(default /tmp/classgate-bench-engine) and are reused when present.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

import numpy as np

from classgate.policies.model import Category, Document, Group, Rule, Schedule, Source, TimeWindow

REPO = Path(__file__).resolve().parents[1]
UT1 = REPO.parent / "shared" / "data" / "ut1"
TLDS = np.array(["com", "net", "org", "xxx", "info", "ru", "de", "fr", "vn", "io", "biz", "co.uk"])
LETTERS = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789", dtype=np.uint8)


def random_labels(rng: np.random.Generator, n: int, lo: int = 5, hi: int = 15) -> list[str]:
    """n random DNS labels of lo..hi letters/digits (first a letter), vectorised for millions."""
    lengths = rng.integers(lo, hi + 1, n)
    chars = LETTERS[rng.integers(0, 26, (n, hi))]
    chars[:, 1:] = LETTERS[rng.integers(0, 36, (n, hi - 1))]
    blob = chars.tobytes().decode("ascii")
    return [blob[i * hi : i * hi + k] for i, k in enumerate(lengths.tolist())]


def make_tree(work: Path, adult_domains: int) -> Path:
    """A UT1-shaped folder: every real category (symlinked) plus adult/domains with generated entries."""
    tree = work / f"ut1-plus-adult-{adult_domains}"
    marker = tree / "adult" / "domains"
    if marker.is_file():
        return tree
    if not UT1.is_dir():
        raise SystemExit(f"UT1 data not found at {UT1} (../shared/data/ut1 beside the repo)")
    (tree / "adult").mkdir(parents=True, exist_ok=True)
    for folder in UT1.iterdir():
        if folder.is_dir() and folder.name != "adult" and not (tree / folder.name).exists():
            os.symlink(folder, tree / folder.name)
    for f in (UT1 / "adult").iterdir():
        if not (tree / "adult" / f.name).exists():
            os.symlink(f, tree / "adult" / f.name)
    rng = np.random.default_rng(20261124)
    labels = random_labels(rng, adult_domains)
    tlds = TLDS[rng.integers(0, len(TLDS), adult_domains)].tolist()
    prefix = rng.random(adult_domains)
    sub = random_labels(rng, adult_domains, 2, 6)
    lines = [f"{s}.{lb}.{t}" if p < 0.2 else f"{lb}.{t}" for lb, t, p, s in zip(labels, tlds, prefix, sub)]
    tmp = marker.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.rename(marker)
    return tree


def categories_of(tree: Path) -> list[str]:
    return sorted(p.name for p in tree.iterdir() if p.is_dir() and ((p / "domains").exists() or (p / "urls").exists()))


def make_document(tree: Path) -> Document:
    """A realistic Department policy: every UT1 list a category; locked blocks, a schedule, groups."""
    cats = {name: Category(name, include=(f"ut1/{name}",)) for name in categories_of(tree)}
    harmful = tuple(c for c in ("adult", "gambling", "malware", "phishing", "agressif", "drogue", "hacking",
                                "warez", "dating", "mixed_adult", "sect", "cryptojacking") if c in cats)
    lessons = Schedule("lessons", (TimeWindow(days=frozenset(range(5)), start=dt.time(7), end=dt.time(17)),))
    return Document(
        name="bench",
        sources={"ut1": Source("ut1", "ut1", tree)},
        categories=cats,
        groups={
            "students": Group("students", (ipaddress.ip_network("10.10.0.0/16"),)),
            "teachers": Group("teachers", (ipaddress.ip_network("10.20.0.0/16"),)),
        },
        schedules={"lessons": lessons},
        rules=(
            Rule("harmful", "block", categories=harmful, tier="locked", locked=True),
            Rule("school-allow", "allow", domains=("moet.gov.vn",), tier="school"),
            Rule("games-in-lessons", "block", groups=("students",), when=("lessons",),
                 categories=tuple(c for c in ("games", "social_networks", "audio-video", "chat") if c in cats)),
            Rule("proxies", "block", groups=("students",), categories=tuple(c for c in ("redirector", "vpn", "doh")
                                                                            if c in cats)),
        ),
        default="allow",
    )


def zipf_ranks(rng: np.random.Generator, n: int, population: int, s: float) -> np.ndarray:
    """n ranks in [0, population) with P(rank r) proportional to 1/(r+1)**s (a truncated Zipf law)."""
    cdf = np.cumsum(1.0 / np.arange(1, population + 1) ** s)
    return np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(n)), population - 1)


def make_stream(tree: Path, n: int, population: int = 200_000, zipf_s: float = 1.0, seed: int = 7
                ) -> tuple[list[str], list[str]]:
    """n (url, client) pairs. Host population: half drawn from the lists (a quarter of those with "www."),
    half unlisted, shuffled; each request picks a host by a truncated Zipf(s=1.0) rank over the population
    (a few hosts get most of the traffic, as in proxy traces). Paths: 60% "/", else /<word>/<k>.html with the
    word uniform over 500 and k Zipf over 1000. Clients: 70% students, 10% teachers, 20% other."""
    rng = np.random.default_rng(seed)
    listed: list[str] = []
    for name in categories_of(tree):
        f = tree / name / "domains"
        if f.exists():
            listed.extend(ln for ln in f.read_text().splitlines() if ln and not ln.startswith("#"))
    pick = rng.choice(len(listed), population // 2, replace=False)
    hosts = [("www." + listed[i]) if rng.random() < 0.25 and not listed[i][-1].isdigit() else listed[i]
             for i in pick.tolist()]
    hosts += [f"{lb}.{t}" for lb, t in zip(random_labels(rng, population - len(hosts)),
                                           ["edu.vn", "com.vn", "com", "org", "net"] * population)]
    order = rng.permutation(len(hosts))
    hosts = [hosts[i] for i in order.tolist()]
    ranks = zipf_ranks(rng, n, len(hosts), zipf_s)
    words = random_labels(rng, 500, 3, 8)
    paths = rng.random(n)
    k = zipf_ranks(rng, n, 1000, 1.0)
    w = rng.integers(0, len(words), n)
    schemes = rng.random(n)
    urls = [
        f"{'https' if s < 0.8 else 'http'}://{hosts[r]}" + ("/" if p < 0.6 else f"/{words[wi]}/{ki}.html")
        for r, p, ki, wi, s in zip(ranks.tolist(), paths.tolist(), k.tolist(), w.tolist(), schemes.tolist())
    ]
    who = rng.random(n)
    last = rng.integers(1, 250, n)
    clients = [(f"10.10.3.{x}" if c < 0.7 else f"10.20.0.{x}" if c < 0.8 else f"192.168.1.{x}")
               for c, x in zip(who.tolist(), last.tolist())]
    return urls, clients
