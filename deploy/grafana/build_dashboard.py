"""Writes classgate.json, the Grafana dashboard (run: .venv/bin/python deploy/grafana/build_dashboard.py).

The dashboard is generated so every panel uses the same label filter and layout rules; the JSON is
committed (import it in Grafana: Dashboards > New > Import) and a test keeps the two in step. The
PromQL here is exactly what tests/metrics/test_metrics_prometheus_e2e.py runs against a real
Prometheus scraping a real gateway.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("classgate.json")
DS = {"type": "prometheus", "uid": "${datasource}"}
# Every query is limited to the chosen schools and gateways. On a school's own Prometheus there is
# no `school` label: `=~".*"` (the "All" value) also matches a missing label.
F = 'school=~"$school", instance=~"$instance"'
RI = "$__rate_interval"


def rate(metric: str, by: str = "", extra: str = "") -> str:
    sel = f"{metric}{{{F}{', ' + extra if extra else ''}}}"
    return f"sum by ({by}) (rate({sel}[{RI}]))" if by else f"sum(rate({sel}[{RI}]))"


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> dict[str, Any]:
    t: dict[str, Any] = {"datasource": DS, "expr": expr, "legendFormat": legend or "__auto", "refId": ref}
    if instant:
        t["instant"] = True
        t["range"] = False
    return t


class Layout:
    """Places panels left to right on Grafana's 24-column grid, one row at a time."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = 0
        self.row_height = 0

    def row(self, title: str) -> None:
        self.newline()
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "collapsed": False,
                "id": len(self.panels) + 1,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.y += 1

    def newline(self) -> None:
        self.y += self.row_height
        self.x, self.row_height = 0, 0

    def add(self, panel: dict[str, Any], w: int, h: int) -> None:
        if self.x + w > 24:
            self.newline()
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        panel["datasource"] = DS
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)


def stat(
    title: str,
    desc: str,
    targets: list[dict[str, Any]],
    unit: str,
    text_mode: str = "value",
    thresholds: list[tuple[float | None, str]] | None = None,
    decimals: int | None = None,
) -> dict[str, Any]:
    steps = [{"color": c, "value": v} for v, c in (thresholds or [(None, "blue")])]
    defaults: dict[str, Any] = {
        "unit": unit,
        "thresholds": {"mode": "absolute", "steps": steps},
        "color": {"mode": "thresholds"},
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "title": title,
        "description": desc,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": text_mode,
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
        },
    }


def series(
    title: str, desc: str, targets: list[dict[str, Any]], unit: str, stack: bool = False, bars: bool = False
) -> dict[str, Any]:
    custom: dict[str, Any] = {
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 60 if bars else 15,
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
    }
    return {
        "type": "timeseries",
        "title": title,
        "description": desc,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit, "custom": custom, "min": 0}, "overrides": []},
        "options": {
            "legend": {
                "displayMode": "table",
                "placement": "right",
                "calcs": ["mean", "max"],
                "showLegend": True,
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def bars(title: str, desc: str, targets: list[dict[str, Any]], unit: str) -> dict[str, Any]:
    return {
        "type": "bargauge",
        "title": title,
        "description": desc,
        "targets": targets,
        "fieldConfig": {
            "defaults": {"unit": unit, "min": 0, "color": {"mode": "continuous-BlPu"}},
            "overrides": [],
        },
        "options": {
            "displayMode": "gradient",
            "orientation": "horizontal",
            "showUnfilled": True,
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
    }


def dashboard() -> dict[str, Any]:
    lay = Layout()
    lay.row("Tổng quan / Overview")
    lay.add(
        stat(
            "Yêu cầu mỗi giây / Requests per second",
            "Web requests through the filter, all categories and groups.",
            [target(rate("classgate_requests_total"))],
            "reqps",
            decimals=1,
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Tỉ lệ bị chặn / Share blocked",
            "Blocked requests as a share of all requests.",
            [
                target(
                    rate("classgate_requests_total", extra='action="block"')
                    + " / "
                    + rate("classgate_requests_total")
                )
            ],
            "percentunit",
            thresholds=[(None, "green"), (0.3, "orange"), (0.6, "red")],
            decimals=1,
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Lỗi bộ lọc (24 giờ) / Filter errors (24 h)",
            "Requests blocked because of an internal error (fail closed). Should be 0.",
            [target(f"sum(increase(classgate_filter_errors_total{{{F}}}[24h]))")],
            "none",
            thresholds=[(None, "green"), (1, "red")],
            decimals=0,
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Phiên bản chính sách / Policy version",
            "The policy in force on each gateway (a short fingerprint of its content).",
            [target(f"max by (version) (classgate_policy_info{{{F}}})", "{{version}}", instant=True)],
            "none",
            text_mode="name",
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Chính sách nạp cách đây / Policy loaded ago",
            "Time since the gateway loaded the policy in force.",
            [target(f"time() - max(classgate_policy_loaded_timestamp_seconds{{{F}}})")],
            "s",
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Cổng lọc hoạt động / Gateways up",
            "Gateways whose metrics the school's Prometheus could read at the last scrape.",
            [target(f'count(up{{job="classgate", {F}}} == 1)')],
            "none",
            thresholds=[(None, "red"), (1, "green")],
            decimals=0,
        ),
        4,
        4,
    )

    lay.row("Sử dụng Internet / Internet use")
    lay.add(
        series(
            "Yêu cầu theo danh mục / Requests by category",
            "Requests per second by the category of the destination (as the policy defines them).",
            [target(rate("classgate_requests_total", "category"), "{{category}}")],
            "reqps",
            stack=True,
        ),
        12,
        8,
    )
    lay.add(
        series(
            "Yêu cầu theo nhóm / Requests by group",
            "Requests per second by group of devices (students, teachers...).",
            [target(rate("classgate_requests_total", "group"), "{{group}}")],
            "reqps",
            stack=True,
        ),
        12,
        8,
    )
    lay.add(
        series(
            "Lưu lượng theo danh mục / Traffic by category",
            "Bytes per second downloaded and uploaded, by category.",
            [
                target(rate("classgate_response_bytes_total", "category"), "{{category}} ↓", "A"),
                target(rate("classgate_request_bytes_total", "category"), "{{category}} ↑", "B"),
            ],
            "Bps",
        ),
        12,
        8,
    )
    lay.add(
        bars(
            "Danh mục nhiều nhất (24 giờ) / Top categories (24 h)",
            "Requests in the last 24 hours per category.",
            [
                target(
                    f"topk(10, sum by (category) (increase(classgate_requests_total{{{F}}}[24h])))",
                    "{{category}}",
                    instant=True,
                )
            ],
            "short",
        ),
        12,
        8,
    )

    lay.row("Chặn / Blocking")
    lay.add(
        series(
            "Bị chặn theo danh mục / Blocked by category",
            "Blocked requests per second by category.",
            [target(rate("classgate_blocked_requests_total", "category"), "{{category}}")],
            "reqps",
            stack=True,
        ),
        8,
        8,
    )
    lay.add(
        series(
            "Bị chặn theo cấp quy tắc / Blocked by rule level",
            "Which level of the policy blocked: locked (Department, cannot be changed), department, "
            "school, default, or error (fail closed).",
            [target(rate("classgate_blocked_requests_total", "tier"), "{{tier}}")],
            "reqps",
            stack=True,
        ),
        8,
        8,
    )
    lay.add(
        series(
            "Bị chặn mỗi giờ / Blocked per hour",
            "When blocks happen: blocked requests in each hour.",
            [target(f"sum(increase(classgate_blocked_requests_total{{{F}}}[1h]))", "blocked")],
            "short",
            bars=True,
        ),
        8,
        8,
    )

    lay.row("HTTPS và SafeSearch / HTTPS and SafeSearch")
    lay.add(
        series(
            "Kết nối HTTPS / HTTPS connections",
            "intercepted: inspected with the school certificate; passthrough: forwarded untouched; "
            "refused: blocked by site name before any content.",
            [target(rate("classgate_tls_connections_total", "mode"), "{{mode}}")],
            "cps",
            stack=True,
        ),
        12,
        8,
    )
    lay.add(
        series(
            "SafeSearch được áp dụng / SafeSearch enforced",
            "Searches rewritten to the engine's safe mode.",
            [target(rate("classgate_safesearch_rewrites_total", "engine"), "{{engine}}")],
            "reqps",
            stack=True,
        ),
        12,
        8,
    )

    lay.row("Tình trạng / Health")
    bucket = f"classgate_decision_duration_seconds_bucket{{{F}}}"
    lay.add(
        series(
            "Thời gian quyết định / Decision time",
            "How long the filter takes to decide a request (median and 99th percentile).",
            [
                target(f"histogram_quantile(0.5, sum by (le) (rate({bucket}[{RI}])))", "p50", "A"),
                target(f"histogram_quantile(0.99, sum by (le) (rate({bucket}[{RI}])))", "p99", "B"),
            ],
            "s",
        ),
        8,
        8,
    )
    lay.add(
        series(
            "Nạp chính sách / Policy reloads",
            "rejected: a new policy did not compile and the previous one stayed in force.",
            [target(f"sum by (result) (increase(classgate_policy_reloads_total{{{F}}}[1h]))", "{{result}}")],
            "short",
            bars=True,
        ),
        8,
        8,
    )
    lay.add(
        series(
            "Lỗi bộ lọc / Filter errors (fail closed)",
            "Internal errors; each one was answered with a block, never an allow.",
            [target(f"sum by (stage) (increase(classgate_filter_errors_total{{{F}}}[1h]))", "{{stage}}")],
            "short",
            bars=True,
        ),
        8,
        8,
    )

    lay.row("Đồng bộ với Sở / Department sync")
    lay.add(
        stat(
            "Đồng bộ thành công cách đây / Last successful sync",
            "Time since the gateway last reached the Department and checked its policy.",
            [target(f"time() - max(classgate_sync_last_success_timestamp_seconds{{{F}}})")],
            "s",
            thresholds=[(None, "green"), (3600, "orange"), (21600, "red")],
        ),
        6,
        4,
    )
    lay.add(
        stat(
            "Gói chính sách / Policy bundle",
            "Version of the Department bundle in force.",
            [target(f"max by (version) (classgate_sync_bundle_info{{{F}}})", "{{version}}", instant=True)],
            "none",
            text_mode="name",
        ),
        6,
        4,
    )
    lay.add(
        stat(
            "Chữ ký hết hạn sau / Signatures expire in",
            "The trusted metadata must be renewed by the Department before this reaches 0.",
            [target(f"min(classgate_sync_metadata_expiry_timestamp_seconds{{{F}}}) - time()")],
            "s",
            thresholds=[(None, "red"), (172800, "orange"), (604800, "green")],
        ),
        6,
        4,
    )
    lay.add(
        stat(
            "Số lần đồng bộ (24 giờ) / Sync attempts (24 h)",
            "Polls of the Department in the last 24 hours.",
            [target(f"sum(increase(classgate_sync_attempts_total{{{F}}}[24h]))")],
            "none",
            decimals=0,
        ),
        6,
        4,
    )
    lay.add(
        series(
            "Đồng bộ lỗi theo lý do / Sync failures by reason",
            "network, http_status, verify (signature), expired, rollback, too_large, invalid_policy, "
            "storage.",
            [target(f"sum by (reason) (increase(classgate_sync_failures_total{{{F}}}[1h]))", "{{reason}}")],
            "short",
            bars=True,
        ),
        12,
        8,
    )
    lay.add(
        bars(
            "Phiên bản chính sách theo số cổng / Gateways per policy version",
            "After the Department publishes, every gateway should move to the new version.",
            [target(f"count by (version) (classgate_policy_info{{{F}}})", "{{version}}", instant=True)],
            "none",
        ),
        12,
        8,
    )

    variables = [
        {
            "type": "datasource",
            "name": "datasource",
            "label": "Nguồn dữ liệu / Data source",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
            "options": [],
        },
        {
            "type": "query",
            "name": "school",
            "label": "Trường / School",
            "datasource": DS,
            "query": {"query": "label_values(classgate_build_info, school)", "refId": "school"},
            "definition": "label_values(classgate_build_info, school)",
            "includeAll": True,
            "allValue": ".*",
            "multi": True,
            "refresh": 2,
            "sort": 1,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "hide": 0,
            "options": [],
        },
        {
            "type": "query",
            "name": "instance",
            "label": "Cổng lọc / Gateway",
            "datasource": DS,
            "query": {
                "query": 'label_values(classgate_build_info{school=~"$school"}, instance)',
                "refId": "instance",
            },
            "definition": 'label_values(classgate_build_info{school=~"$school"}, instance)',
            "includeAll": True,
            "allValue": ".*",
            "multi": True,
            "refresh": 2,
            "sort": 1,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "hide": 0,
            "options": [],
        },
    ]
    return {
        "uid": "classgate-usage",
        "title": "classgate — Sử dụng Internet / Internet use",
        "description": "Aggregate Internet use through classgate school gateways. No student, device, "
        "address or site appears here: only categories, groups and counts.",
        "tags": ["classgate"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "1m",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-24h", "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [],
        "panels": lay.panels,
    }


def render() -> str:
    return json.dumps(dashboard(), ensure_ascii=False, indent=2) + "\n"


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")
