"""Plain-word names for categories, shown on the block page instead of list identifiers.

Keys are the category names policies commonly use: the UT1 list names (see
shared/data/ut1/global_usage) and a few short aliases. A category without an entry is shown by its
own name with underscores and dashes made spaces, which is still readable.
"""

from __future__ import annotations

# name -> (Vietnamese, English)
CATEGORY_NAMES: dict[str, tuple[str, str]] = {
    "adult": ("Nội dung người lớn", "Adult content"),
    "porn": ("Nội dung người lớn", "Adult content"),
    "mixed_adult": ("Nội dung người lớn lẫn lộn", "Mixed adult content"),
    "lingerie": ("Đồ lót", "Lingerie"),
    "dating": ("Hẹn hò", "Dating"),
    "gambling": ("Cờ bạc", "Gambling"),
    "arjel": ("Cờ bạc trực tuyến", "Online betting"),
    "games": ("Trò chơi", "Games"),
    "educational_games": ("Trò chơi giáo dục", "Educational games"),
    "social_networks": ("Mạng xã hội", "Social networks"),
    "social": ("Mạng xã hội", "Social networks"),
    "chat": ("Trò chuyện trực tuyến", "Chat"),
    "forums": ("Diễn đàn", "Forums"),
    "blog": ("Blog", "Blogs"),
    "webmail": ("Thư điện tử trên web", "Webmail"),
    "audio-video": ("Âm thanh và video", "Audio and video"),
    "video": ("Video", "Video"),
    "radio": ("Radio trực tuyến", "Online radio"),
    "streaming": ("Phát trực tuyến", "Streaming"),
    "celebrity": ("Người nổi tiếng", "Celebrities"),
    "manga": ("Truyện tranh", "Manga and comics"),
    "shopping": ("Mua sắm", "Shopping"),
    "jobsearch": ("Tìm việc làm", "Job search"),
    "sports": ("Thể thao", "Sports"),
    "press": ("Báo chí", "News"),
    "news": ("Báo chí", "News"),
    "fakenews": ("Tin giả", "Fake news"),
    "agressif": ("Bạo lực, thù hằn", "Violence and hate"),
    "violence": ("Bạo lực", "Violence"),
    "drogue": ("Ma túy", "Drugs"),
    "drugs": ("Ma túy", "Drugs"),
    "dangerous_material": ("Vật liệu nguy hiểm", "Dangerous material"),
    "weapons": ("Vũ khí", "Weapons"),
    "sect": ("Giáo phái", "Sects"),
    "astrology": ("Chiêm tinh", "Astrology"),
    "hacking": ("Tin tặc", "Hacking"),
    "malware": ("Phần mềm độc hại", "Malware"),
    "phishing": ("Lừa đảo trực tuyến", "Phishing"),
    "cryptojacking": ("Đào tiền ảo trái phép", "Cryptojacking"),
    "bitcoin": ("Tiền mã hóa", "Cryptocurrency"),
    "ddos": ("Tấn công từ chối dịch vụ", "DDoS services"),
    "stalkerware": ("Phần mềm theo dõi", "Stalkerware"),
    "marketingware": ("Phần mềm quảng cáo", "Marketing software"),
    "publicite": ("Quảng cáo", "Advertising"),
    "ads": ("Quảng cáo", "Advertising"),
    "warez": ("Phần mềm lậu", "Pirated software"),
    "download": ("Tải xuống", "Downloads"),
    "filehosting": ("Lưu trữ tệp", "File hosting"),
    "vpn": ("VPN", "VPN"),
    "redirector": ("Vượt tường lửa", "Filter bypass"),
    "strict_redirector": ("Vượt tường lửa", "Filter bypass"),
    "strong_redirector": ("Vượt tường lửa", "Filter bypass"),
    "proxy": ("Vượt tường lửa", "Filter bypass"),
    "residential-proxies": ("Proxy dân dụng", "Residential proxies"),
    "doh": ("DNS mã hóa (DoH)", "Encrypted DNS (DoH)"),
    "dynamic-dns": ("DNS động", "Dynamic DNS"),
    "remote-control": ("Điều khiển từ xa", "Remote control"),
    "shortener": ("Rút gọn liên kết", "Link shorteners"),
    "tricheur": ("Gian lận thi cử", "Exam cheating"),
    "tricheur_pix": ("Gian lận thi cử", "Exam cheating"),
    "ai": ("Trí tuệ nhân tạo", "Artificial intelligence"),
    "mobile-phone": ("Điện thoại di động", "Mobile phones"),
    "bank": ("Ngân hàng", "Banking"),
    "financial": ("Tài chính", "Finance"),
    "translation": ("Dịch thuật", "Translation"),
    "update": ("Cập nhật phần mềm", "Software updates"),
    "webhosting": ("Lưu trữ web", "Web hosting"),
    "cleaning": ("Phần mềm dọn dẹp", "Cleaning software"),
    "sexual_education": ("Giáo dục giới tính", "Sex education"),
    "child": ("Dành cho trẻ em", "For children"),
    "cooking": ("Nấu ăn", "Cooking"),
    "uncategorized": ("Chưa phân loại", "Uncategorized"),
}


def category_label(name: str, language: str) -> str:
    """The plain-word name of category `name` in `language` ("vi" or "en")."""
    names = CATEGORY_NAMES.get(name)
    if names is None:
        return name.replace("_", " ").replace("-", " ")
    return names[0] if language == "vi" else names[1]
