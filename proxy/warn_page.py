"""The warn page: why a site is discouraged, and a "continue" button (a form POST), in the block page's look.

Answered 403 in place of the site, like the block page, and with the same rules: every value from the request
or the policy escaped, no script, nothing loaded. The form posts to a path the gateway answers itself on the
warned host (proxy/warn.py), with a signed token in its target so that no other page can post it.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass

from classgate.proxy.blockpage import MAX_SHOWN_URL, BlockPage, row
from classgate.proxy.category_names import category_label

ACCENT = "#9a5b00"  # amber: a caution, not a stop

_TEXT = {
    "vi": {
        "title": "Cân nhắc trước khi vào trang",
        "heading": "Bạn có cần trang này không?",
        "lead_category": "Trang này thuộc nhóm <strong>{category}</strong>. Nhà trường đề nghị bạn chỉ mở khi cần "
        "cho việc học.",
        "lead_plain": "Nhà trường đề nghị bạn chỉ mở trang này khi cần cho việc học.",
        "continue_note": "Nếu bạn tiếp tục, trang này sẽ mở trên thiết bị này trong {minutes} phút.",
        "quota_left": "Thời gian còn lại hôm nay: {minutes} phút (đặt lại lúc 00:00).",
        "button": "Tiếp tục vào trang",
        "address": "Địa chỉ",
        "reason": "Lý do",
        "category": "Danh mục",
        "contact": "Liên hệ",
        "time": "Thời gian",
        "ref": "Mã tham chiếu",
        "ref_rule": "quy tắc",
        "footer": "Không muốn vào nữa? Chỉ cần đóng thẻ này hoặc quay lại trang trước.",
        "sep": ", ",
    },
    "en": {
        "title": "Think before you continue",
        "heading": "Do you need this page?",
        "lead_category": "This address is in the category <strong>{category}</strong>. The school asks you to "
        "open it only if you need it for your studies.",
        "lead_plain": "The school asks you to open this page only if you need it for your studies.",
        "continue_note": "If you continue, this site opens on this device for {minutes} minutes.",
        "quota_left": "Time left today: {minutes} min (resets at 00:00).",
        "button": "Continue to the page",
        "address": "Address",
        "reason": "Reason",
        "category": "Category",
        "contact": "Contact",
        "time": "Time",
        "ref": "Reference",
        "ref_rule": "rule",
        "footer": "Changed your mind? Just close this tab or go back.",
        "sep": ", ",
    },
}


@dataclass(frozen=True)
class WarnInfo:
    """What the warn page says about one warned request."""

    url: str
    form_action: str  # path and query on the warned host that "continue" posts to
    minutes: int  # how long "continue" opens the site for
    categories: tuple[str, ...] = ()
    rule: str | None = None
    reason: str = ""  # the rule's own reason in the page's language, else empty
    contact: str = ""
    at: dt.datetime | None = None
    ref: str = ""
    quota_left: int | None = None  # minutes left today on the rule's quota; None: no quota


def render_warn(page: BlockPage, info: WarnInfo, language: str = "vi") -> bytes:
    """The warn page for `info` in `language`, as UTF-8 bytes."""
    t = _TEXT.get(language, _TEXT["vi"])
    esc = html.escape
    shown_url = info.url if len(info.url) <= MAX_SHOWN_URL else info.url[:MAX_SHOWN_URL] + "…"
    labels = [category_label(c, language) for c in info.categories]
    lead = t["lead_category"].format(category=esc(labels[0])) if labels else t["lead_plain"]
    rows = [row(t["address"], f'<span class="url">{esc(shown_url)}</span>')]
    if info.reason:
        rows.append(row(t["reason"], esc(info.reason)))
    if labels:
        rows.append(row(t["category"], esc(t["sep"].join(labels))))
    if info.contact:
        rows.append(row(t["contact"], esc(info.contact)))
    if info.at is not None:
        rows.append(row(t["time"], esc(info.at.strftime("%H:%M %d/%m/%Y"))))
    if info.ref:
        rows.append(row(t["ref"], f'<span class="ref">{esc(info.ref)}</span> ({t["ref_rule"]} {esc(info.rule or "")})'))
    notes = [t["continue_note"].format(minutes=info.minutes)]
    if info.quota_left is not None:
        notes.append(t["quota_left"].format(minutes=info.quota_left))
    after = (f'<form method="post" action="{esc(info.form_action)}">'
             f'<p>{esc(" ".join(notes))}</p>'
             f'<button type="submit">{esc(t["button"])}</button></form>')
    return page.compose(language, title=t["title"], heading=t["heading"], lead_html=lead, rows=rows,
                        after_html=after, footer=t["footer"], accent=ACCENT)
