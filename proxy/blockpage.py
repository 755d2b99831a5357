"""The block page and the "filter error" page: 403, Vietnamese by default, self-contained HTML.

Every value that comes from the request or the policy is escaped with html.escape before it reaches
the template (string.Template does no escaping of its own), so a URL carrying `<script>` is shown,
never run.
"""

from __future__ import annotations

import datetime as dt
import html
import random
import string
from dataclasses import dataclass
from importlib import resources

from classgate.policies.vocabulary import PAGE_LANGUAGES, ClassActionKind
from classgate.proxy.category_names import category_label

# Long URLs (tracking parameters...) would push the useful lines off a phone screen.
MAX_SHOWN_URL = 300

REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone (and ask codes)
_random = random.SystemRandom()


@dataclass(frozen=True)
class BlockInfo:
    """What the page says about one blocked request."""

    url: str
    categories: tuple[str, ...] = ()
    rule: str | None = None
    contact: str = ""
    at: dt.datetime | None = None
    ref: str = ""
    error: bool = False  # True: the filter failed and blocked to be safe
    reason: str = ""  # the rule's own reason in the page's language (policy `reason:`), else empty
    until: dt.datetime | None = None  # a block a schedule makes temporary ends then (local time)
    gateway: bool = False  # the address is the school gateway itself
    quota_used_up: bool = False  # the rule's daily quota is used up on this device (it allows otherwise)
    ask_code: str = ""  # "ask your teacher" (proxy/ask_code.py), shown as ABCD-EFGH; empty: not offered


_TEXT = {
    "vi": {
        "title": "Trang bị chặn",
        "heading": "Trang này đã bị chặn",
        "lead_category": "Trang này thuộc nhóm <strong>{category}</strong> nên không được truy cập trên mạng "
        "của trường.",
        "lead_plain": "Trang này không được phép truy cập trên mạng của trường.",
        "lead_gateway": "Địa chỉ này là máy chủ lọc của trường, không truy cập được qua mạng của trường.",
        "until": "Trang chỉ bị chặn trong khung giờ này, đến {time}.",
        "until_day": "Trang chỉ bị chặn trong khung giờ này, đến {time} ngày {date}.",
        "error_title": "Lỗi bộ lọc",
        "error_heading": "Bộ lọc tạm thời gặp lỗi",
        "error_lead": "Để đảm bảo an toàn, trang này đã bị chặn vì bộ lọc không kiểm tra được địa chỉ. "
        "Hãy thử lại sau ít phút; nếu lỗi vẫn còn, hãy báo cho quản trị viên kèm mã tham chiếu.",
        "address": "Địa chỉ",
        "reason": "Lý do",
        "category": "Danh mục",
        "rule": "Quy tắc",
        "default_rule": "Mặc định của chính sách",
        "contact": "Liên hệ",
        "time": "Thời gian",
        "ref": "Mã tham chiếu",
        "footer": "Nếu bạn cần trang này cho việc học, hãy báo thầy cô hoặc bộ phận quản trị mạng và "
        "cung cấp mã tham chiếu ở trên.",
        "ref_rule": "quy tắc",
        "error_reason": "Lỗi nội bộ của bộ lọc",
        "quota_used_up": "Hôm nay bạn đã dùng hết thời gian cho nhóm trang này; hạn mức được đặt lại lúc 00:00.",
        "footer_ask": "Nếu trang bị chặn nhầm, hãy báo bộ phận quản trị mạng kèm mã tham chiếu ở trên.",
        "ask_note": "Nếu bạn cần trang này cho việc học, hãy đưa mã <strong class=\"ref\">{code}</strong> cho thầy "
        "cô của bạn: thầy cô có thể mở trang này cho lớp. Trang này không tự gửi gì đi.",
        "sep": ", ",
    },
    "en": {
        "title": "Page blocked",
        "heading": "This page is blocked",
        "lead_category": "This address is in the category <strong>{category}</strong>, which is not allowed "
        "on the school network.",
        "lead_plain": "This address is not allowed on the school network.",
        "lead_gateway": "This address is the school's filtering gateway itself, which cannot be reached "
        "through the school network.",
        "until": "It is blocked only during this time, until {time}.",
        "until_day": "It is blocked only during this time, until {time} on {date}.",
        "error_title": "Filter error",
        "error_heading": "The filter ran into a problem",
        "error_lead": "To keep you safe, this page was blocked because the filter could not check the "
        "address. Try again in a few minutes; if it keeps happening, tell the administrator the reference.",
        "address": "Address",
        "reason": "Reason",
        "category": "Category",
        "rule": "Rule",
        "default_rule": "Policy default",
        "contact": "Contact",
        "time": "Time",
        "ref": "Reference",
        "footer": "If you need this page for your studies, ask your teacher or the network administrator "
        "and give them the reference above.",
        "ref_rule": "rule",
        "error_reason": "Internal filter error",
        "quota_used_up": "Today's time for these sites is used up on this device; the quota resets at 00:00.",
        "footer_ask": "If this page is blocked by mistake, tell the network administrator the reference above.",
        "ask_note": "If you need this page for your studies, give the code <strong class=\"ref\">{code}</strong> "
        "to your teacher, who can open it for your class. Nothing is sent anywhere by this page.",
        "sep": ", ",
    },
}

def new_ref() -> str:
    """A short reference id (8 characters, ~40 bits) for the block page and the log line."""
    return "".join(_random.choice(REF_ALPHABET) for _ in range(8))


def choose_language(accept_language: str | None, default: str = "vi") -> str:
    """The page language: the client's most preferred of vi/en by Accept-Language, else `default`."""
    best, best_q = None, 0.0
    for order, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-", 1)[0]
        if primary not in PAGE_LANGUAGES:
            continue
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                continue
        # Earlier entries win ties, as browsers list languages in preference order.
        q -= order * 1e-6
        if q > best_q:
            best, best_q = primary, q
    if best is not None:
        return best
    return default if default in PAGE_LANGUAGES else "vi"


def row(label: str, value_html: str) -> str:
    """One line of the page's facts (the label is ours; the value must be escaped HTML already)."""
    return f"<dt>{label}</dt><dd>{value_html}</dd>"



# What a teacher's class action says to the student in place of a rule's reason (policies/class_actions.py).
_TEACHER_REASONS: dict[str, dict[ClassActionKind, str]] = {
    "vi": {
        "pause": "Giáo viên đã tạm dừng Internet cho lớp của em.",
        "block": "Giáo viên đã chặn trang này cho lớp của em.",
        "lock": "Giáo viên chỉ mở một số trang cho lớp của em trong lúc này.",
        "allow": "Giáo viên đã mở trang này cho lớp của em.",
    },
    "en": {
        "pause": "Your teacher has paused the Internet for your class.",
        "block": "Your teacher has blocked this page for your class.",
        "lock": "Your teacher has opened only some sites for your class for now.",
        "allow": "Your teacher has opened this page for your class.",
    },
}


def teacher_reason(kind: ClassActionKind, language: str) -> str:
    """The block page's reason for a request a teacher's action blocked."""
    return _TEACHER_REASONS.get(language, _TEACHER_REASONS["vi"])[kind]

class BlockPage:
    """Renders the page; the template is read from the package on first use and kept."""

    @staticmethod
    def _until(info: BlockInfo, t: dict[str, str]) -> str:
        """When a temporary block ends, as a student reads it: "11:30", "24:00", or a time and a date."""
        assert info.until is not None
        today = info.at.date() if info.at is not None else info.until.date()
        if info.until.date() == today:
            return t["until"].format(time=f"{info.until:%H:%M}")
        if info.until.date() == today + dt.timedelta(days=1) and info.until.time() == dt.time(0, 0):
            return t["until"].format(time="24:00")
        return t["until_day"].format(time=f"{info.until:%H:%M}", date=f"{info.until:%d/%m/%Y}")

    def __init__(self) -> None:
        self._template: string.Template | None = None

    def _page_template(self) -> string.Template:
        if self._template is None:
            text = resources.files("classgate.proxy").joinpath("templates/page.html").read_text(encoding="utf-8")
            self._template = string.Template(text)
        return self._template

    def render(self, info: BlockInfo, language: str = "vi") -> bytes:
        """The page for `info` in `language`, as UTF-8 bytes."""
        t = _TEXT.get(language, _TEXT["vi"])
        esc = html.escape
        shown_url = info.url if len(info.url) <= MAX_SHOWN_URL else info.url[:MAX_SHOWN_URL] + "…"
        rows = [row(t["address"], f'<span class="url">{esc(shown_url)}</span>')]
        if info.error:
            title, heading, lead = t["error_title"], t["error_heading"], t["error_lead"]
            rows.append(row(t["reason"], esc(t["error_reason"])))
            accent = "#8a5a00"
        else:
            title, heading = t["title"], t["heading"]
            labels = [category_label(c, language) for c in info.categories]
            if info.gateway:
                lead = t["lead_gateway"]
            elif info.quota_used_up:
                lead = esc(t["quota_used_up"])
            elif labels:
                lead = t["lead_category"].format(category=esc(labels[0]))
            else:
                lead = t["lead_plain"]
            if info.reason:
                # The school's own words first; the category line stays below as a fact.
                rows.append(row(t["reason"], esc(info.reason)))
            if labels:
                rows.append(row(t["category"], esc(t["sep"].join(labels))))
            if info.until is not None:
                lead += " " + esc(self._until(info, t))
            accent = "#b3261e"
        if info.contact:
            rows.append(row(t["contact"], esc(info.contact)))
        if info.at is not None:
            rows.append(row(t["time"], esc(info.at.strftime("%H:%M %d/%m/%Y"))))
        if info.ref:
            # The rule's name is for the admin who looks the reference up: beside it, not as the reason.
            rule = "" if info.error else f' ({t["ref_rule"]} {esc(info.rule or t["default_rule"])})'
            rows.append(row(t["ref"], f'<span class="ref">{esc(info.ref)}</span>{rule}'))
        after, footer = "", t["footer"]
        if info.ask_code and not info.error and not info.gateway:
            after = f'<p class="ask">{t["ask_note"].format(code=esc(info.ask_code))}</p>'
            footer = t["footer_ask"]
        return self.compose(language, title=title, heading=heading, lead_html=lead, rows=rows, after_html=after,
                            footer=footer, accent=accent)

    def compose(self, language: str, *, title: str, heading: str, lead_html: str, rows: list[str],
                after_html: str, footer: str, accent: str) -> bytes:
        """A page in the block page's look (the warn page is one too): `*_html` and `rows` escaped already."""
        esc = html.escape
        page = self._page_template().substitute(
            lang=language,
            title=esc(title),
            heading=esc(heading),
            lead=lead_html,
            rows="\n".join(rows),
            after=after_html,
            footer=esc(footer),
            accent=accent,
        )
        return page.encode("utf-8")
