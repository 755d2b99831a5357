"""The warn page and the block page's student lines: languages, escaping, the form, the ask code."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest

from classgate.proxy.blockpage import BlockInfo, BlockPage
from classgate.proxy.warn_page import WarnInfo, render_warn

PAGE = BlockPage()
AT = dt.datetime(2026, 11, 23, 9, 5, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
WARN = WarnInfo(url="http://social.test/feed", form_action="/.classgate/continue?t=1.abc&to=%2Ffeed", minutes=15,
                categories=("social",), rule="think-first", at=AT, ref="K9M4QNVG")


@pytest.mark.parametrize(
    ("language", "info", "expected"),
    [
        ("vi", WARN, ["Bạn có cần trang này không?", "Mạng xã hội", "trong 15 phút", "Tiếp tục vào trang",
                      "quy tắc think-first", "K9M4QNVG"]),
        ("en", WARN, ["Do you need this page?", "Social", "for 15 minutes", "Continue to the page"]),
        ("vi", WarnInfo(url="http://x.test/", form_action="/.classgate/continue?t=1.a&to=%2F", minutes=5,
                        quota_left=12), ["Nhà trường đề nghị", "Thời gian còn lại hôm nay: 12 phút (đặt lại lúc 00:00)"]),
        ("en", WarnInfo(url="http://x.test/", form_action="/c", minutes=5, quota_left=0, reason="Not in class"),
         ["Time left today: 0 min (resets at 00:00)", "Not in class"]),
    ],
)
def test_warn_page_says_why_and_offers_to_continue(language, info, expected):
    page = render_warn(PAGE, info, language).decode()
    for text in expected:
        assert text in page, text
    form = re.search(r'<form method="post" action="([^"]+)">', page)
    assert form is not None and form.group(1) == info.form_action.replace("&", "&amp;")
    assert f'lang="{language}"' in page and "<script" not in page


def test_warn_page_escapes_what_it_reflects():
    hostile = WarnInfo(url='http://x.test/"><script>alert(1)</script>', form_action='/c?to="><b>',
                       minutes=5, reason="<img src=x onerror=alert(1)>")
    page = render_warn(PAGE, hostile, "en").decode()
    assert "<script>" not in page and "<img" not in page and '"><b>' not in page
    assert "&lt;script&gt;" in page


@pytest.mark.parametrize(
    ("info", "present", "absent"),
    [
        (BlockInfo(url="http://a.test/", categories=("games",), ref="R", ask_code="HY9P-SHMU"),
         ["HY9P-SHMU", "thầy cô của bạn", "Trang này không tự gửi gì đi", "bị chặn nhầm"], ["cung cấp mã tham chiếu"]),
        (BlockInfo(url="http://a.test/", categories=("games",), ref="R"),
         ["cung cấp mã tham chiếu"], ['class="ask"']),
        (BlockInfo(url="http://a.test/", ref="R", error=True, ask_code="HY9P-SHMU"), [], ["HY9P-SHMU"]),
        (BlockInfo(url="http://a.test/", ref="R", gateway=True, ask_code="HY9P-SHMU"), [], ["HY9P-SHMU"]),
        (BlockInfo(url="http://a.test/", categories=("games",), ref="R", quota_used_up=True, ask_code="HY9P-SHMU"),
         ["dùng hết thời gian", "00:00", "HY9P-SHMU"], ["không được truy cập"]),
    ],
)
def test_block_page_student_lines(info, present, absent):
    page = PAGE.render(info, "vi").decode()
    for text in present:
        assert text in page, text
    for text in absent:
        assert text not in page, text


def test_block_page_in_english_says_the_quota_and_the_code():
    page = PAGE.render(BlockInfo(url="http://a.test/", ref="R", quota_used_up=True, ask_code="HY9P-SHMU"),
                       "en").decode()
    assert "the quota resets at 00:00" in page and "give the code" in page and "HY9P-SHMU" in page
