"""The fleet path with the shipped configs: a school-side Prometheus in agent mode
(deploy/prometheus/school/prometheus.yml) scrapes a gateway's endpoint and remote_writes to a
Department Prometheus (deploy/prometheus/department/prometheus.yml, remote-write receiver, the shipped
rules). Only test-local values are changed: addresses, the school code, no TLS/basic auth, 1 s intervals.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from classgate.metrics import server
from classgate.proxy.metric_labels import gateway_metrics
from tests.metrics.metrics_e2e import Prometheus, free_port, wait_for
from tests.metrics.metrics_testlib import FIXED_TIME, PROMETHEUS, REPO, feed_known_events, need_tool

pytestmark = pytest.mark.e2e

SHIPPED = REPO / "deploy" / "prometheus"
SCHOOL = "thpt-e2e"


def department_prometheus(work: Path) -> Prometheus:
    """The shipped Department config and rules, receiving remote writes; rules evaluated every second."""
    config = yaml.safe_load((SHIPPED / "department" / "prometheus.yml").read_text())
    config["global"]["evaluation_interval"] = "1s"
    rule_files = []
    for name in config["rule_files"]:  # the shipped rules, evaluated every second instead of 1-5 min
        rules = yaml.safe_load((SHIPPED / "department" / name).read_text())
        for group in rules["groups"]:
            group["interval"] = "1s"
        rule_files.append(str(work / Path(name).name))
        Path(rule_files[-1]).write_text(yaml.safe_dump(rules, allow_unicode=True))
    config["rule_files"] = rule_files
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{free_port()}"]
    config["scrape_configs"] = []
    return Prometheus(work / "department", config=config, args=("--web.enable-remote-write-receiver",))


def school_agent(work: Path, target: str, department_url: str) -> tuple[subprocess.Popen[bytes], Path]:
    config = yaml.safe_load((SHIPPED / "school" / "prometheus.yml").read_text())
    assert config["global"]["external_labels"]["school"] == "SCHOOL_CODE"
    config["global"]["external_labels"]["school"] = SCHOOL
    config["global"]["scrape_interval"] = "1s"
    config["global"]["scrape_timeout"] = "1s"
    config["scrape_configs"][0]["static_configs"][0]["targets"] = [target]
    remote = config["remote_write"][0]
    remote["url"] = f"{department_url}/api/v1/write"
    del remote["basic_auth"]  # the Department's TLS proxy checks it; none here
    remote["queue_config"]["batch_send_deadline"] = "1s"
    path = work / "school.yml"
    path.write_text(yaml.safe_dump(config))
    log = work / "school-agent.log"
    proc = subprocess.Popen(
        [
            need_tool(PROMETHEUS),
            "--enable-feature=agent",
            f"--config.file={path}",
            f"--storage.agent.path={work / 'agent-wal'}",
            f"--web.listen-address=127.0.0.1:{free_port()}",
            "--log.level=warn",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return proc, log


@pytest.fixture(scope="module")
def department(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    work = tmp_path_factory.mktemp("metrics-fleet")
    m = gateway_metrics(clock=lambda: FIXED_TIME)
    feed_known_events(m)
    endpoint = server.start(m, "127.0.0.1", 0)
    dept = agent = None
    try:
        dept = department_prometheus(work)
        agent, log = school_agent(work, f"127.0.0.1:{endpoint.port}", dept.url)
        wait_for(
            "the school's series at the Department",
            lambda: dept.vector(f'classgate_build_info{{school="{SCHOOL}"}}'),
            60,
            agent,
            log,
        )
        # Two more increments so rate() in the recording rules has something to see.
        for _ in range(2):
            m.record_request("games", "students", "block", "department", 0, 0)
        wait_for(
            "the recording rules",
            lambda: dept.vector(
                f'school:classgate_requests:rate5m{{school="{SCHOOL}", category="games", action="block"}} > 0'
            ),
            60,
            agent,
            log,
        )
        yield dept
    finally:
        if agent is not None and agent.poll() is None:
            agent.terminate()
            agent.wait(timeout=15)
        if dept is not None:
            dept.stop()
        endpoint.close()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # The gateway's own series arrive with the school's label, and `up` with them.
        (f'up{{job="classgate", school="{SCHOOL}"}}', {(): 1.0}),
        (
            f'classgate_requests_total{{school="{SCHOOL}", category="games", group="students", action="block"}}',
            {(): 4.0},
        ),
        (f'classgate_sync_bundle_version{{school="{SCHOOL}"}}', {(): 42.0}),
        # The write_relabel keep rule: only what the dashboards and rules use leaves the school.
        (f'process_virtual_memory_bytes{{school="{SCHOOL}"}}', {}),
        (f'count(process_resident_memory_bytes{{school="{SCHOOL}"}})', {(): 1.0}),
        (f'scrape_duration_seconds{{school="{SCHOOL}"}}', {}),
        # The Department's aggregates over the received series.
        ('department:classgate_policy_version:count{version="3f9a1c2e"}', {(): 1.0}),
        ("department:classgate_gateways_up:count", {(): 1.0}),
    ],
)
def test_series_at_the_department(
    department: Prometheus, query: str, expected: dict[tuple[str, ...], float]
) -> None:
    # Each query selects at most one series here; compare values only.
    got: dict[tuple[str, ...], float] = {}
    for _, value in department.vector(query):
        assert () not in got, f"{query}: more than one series"
        got[()] = value
    assert got == expected
