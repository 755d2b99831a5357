"""The block page: language choice, plain-word reasons, escaping, the filter error variant."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest

from classgate.proxy import blockpage
from classgate.proxy.blockpage import BlockInfo, BlockPage, choose_language

render = BlockPage().render
from classgate.proxy.category_names import category_label

AT = dt.datetime(2026, 11, 23, 9, 5, 7, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))


@pytest.mark.parametrize(
    ("accept_language", "default", "expected"),
    [
        (None, "vi", "vi"),
        ("", "en", "en"),
        ("en-US,en;q=0.9", "vi", "en"),
        ("vi-VN,vi;q=0.9,en;q=0.8", "en", "vi"),
        ("fr-FR,fr;q=0.9", "vi", "vi"),  # neither offered: the policy's language
        ("fr-FR,fr;q=0.9", "en", "en"),
        ("en;q=0.3,vi;q=0.7", "en", "vi"),  # q-values, not order, decide
        ("en,vi", "vi", "en"),  # equal q: the first listed wins
        ("vi;q=abc,en", "vi", "en"),  # a broken q-value is skipped
        ("*", "vi", "vi"),
        ("en", "xx", "en"),
        ("de", "xx", "vi"),  # unknown default falls back to Vietnamese
    ],
)
def test_choose_language(accept_language, default, expected):
    assert choose_language(accept_language, default) == expected


@pytest.mark.parametrize(
    ("info", "language", "must_contain"),
    [
        (
            BlockInfo("http://casino.example/", ("gambling",), "harmful", "Phòng CNTT", AT, "ABCD2345"),
            "vi",
            ["Trang này đã bị chặn", "Cờ bạc", "(quy tắc harmful)", "Phòng CNTT", "09:05 23/11/2026", "ABCD2345",
             "http://casino.example/", 'lang="vi"', "cung cấp mã tham chiếu"],
        ),
        # The school's reason replaces the rule name as the why; the name stays beside the reference.
        (
            BlockInfo("http://tiktok.example/", ("social",), "focus-in-class", "", AT, "ABCD2345",
                      reason="Giờ học: mạng xã hội tạm khóa để các em tập trung.",
                      until=AT.replace(hour=11, minute=30, second=0)),
            "vi",
            ["Giờ học: mạng xã hội tạm khóa để các em tập trung.", "đến 11:30",
             "ABCD2345</span> (quy tắc focus-in-class)"],
        ),
        (
            BlockInfo("http://tiktok.example/", ("social",), "focus-in-class", "", AT, "ABCD2345",
                      until=AT.replace(hour=0, minute=0, second=0) + dt.timedelta(days=1)),
            "en",
            ["blocked only during this time, until 24:00."],
        ),
        (
            BlockInfo("http://x.example/", (), "exam-week", "", AT, "R",
                      until=AT.replace(hour=17, minute=0) + dt.timedelta(days=4)),
            "vi",
            ["đến 17:00 ngày 27/11/2026"],
        ),
        (
            BlockInfo("http://127.0.0.1:9741/", (), "gateway-itself", "", AT, "R", gateway=True),
            "en",
            ["the school's filtering gateway itself"],
        ),
        (
            BlockInfo("http://casino.example/", ("gambling",), "harmful", "IT office", AT, "ABCD2345"),
            "en",
            ["This page is blocked", "Gambling", "harmful", "IT office", "ABCD2345", 'lang="en"'],
        ),
        (
            BlockInfo("http://x.example/", (), None, "", None, "R"),
            "vi",
            ["không được phép truy cập", "Mặc định của chính sách"],
        ),
        (
            BlockInfo("http://x.example/", ("some_custom-cat",), "r", "", None, "R"),
            "en",
            ["some custom cat"],
        ),
        (
            BlockInfo("http://x.example/", (), None, "c", AT, "ERRREF22", error=True),
            "vi",
            ["Bộ lọc tạm thời gặp lỗi", "Lỗi nội bộ của bộ lọc", "ERRREF22"],
        ),
        (
            BlockInfo("http://x.example/", (), None, "c", AT, "ERRREF22", error=True),
            "en",
            ["The filter ran into a problem", "ERRREF22"],
        ),
    ],
)
def test_render_says_what_and_why(info, language, must_contain):
    page = render(info, language).decode("utf-8")
    for text in must_contain:
        assert text in page


def test_render_is_self_contained_and_mobile_ready():
    page = render(BlockInfo("http://x.example/a", ("adult",), "r", "c", AT, "R"), "vi").decode()
    assert '<meta name="viewport"' in page
    assert '<meta charset="utf-8">' in page
    # Nothing loaded from anywhere: it must render with no network.
    assert not re.search(r"""(src|href)\s*=|@import|url\(""", page, re.IGNORECASE)
    assert "<script" not in page.lower()


HOSTILE = '<script>alert("x")</script>'


@pytest.mark.parametrize(
    "info",
    [
        BlockInfo(f"http://evil.example/{HOSTILE}?q={HOSTILE}", ("gambling",), "r", "c", AT, "R"),
        BlockInfo("http://evil.example/", (HOSTILE,), HOSTILE, HOSTILE, AT, HOSTILE),
        BlockInfo(f"http://evil.example/{HOSTILE}", (), None, HOSTILE, AT, "R", error=True),
    ],
)
@pytest.mark.parametrize("language", ["vi", "en"])
def test_every_reflected_value_is_escaped(info, language):
    page = render(info, language).decode()
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page


def test_long_url_is_shortened_for_display():
    page = render(BlockInfo("http://x.example/" + "a" * 5000, (), None, "", None, "R"), "en").decode()
    assert "a" * blockpage.MAX_SHOWN_URL not in page
    assert "…" in page


def test_refs_are_short_and_unambiguous():
    refs = {blockpage.new_ref() for _ in range(2000)}
    assert len(refs) == 2000
    for ref in refs:
        assert len(ref) == 8
        assert not set(ref) & set("01IO")


@pytest.mark.parametrize(
    ("name", "language", "expected"),
    [
        ("gambling", "vi", "Cờ bạc"),
        ("gambling", "en", "Gambling"),
        ("social_networks", "vi", "Mạng xã hội"),
        ("adult", "vi", "Nội dung người lớn"),
        ("my_own-list", "vi", "my own list"),
    ],
)
def test_category_labels(name, language, expected):
    assert category_label(name, language) == expected
