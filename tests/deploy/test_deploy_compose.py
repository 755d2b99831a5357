"""deploy/compose/: the stacks are well-formed and everything they mount or build from exists.

No Docker engine runs here, so this is what can be checked without one: the structure the Compose
specification requires, every repository file a service mounts, the Dockerfile's sources, and that
the classgate commands the stacks run are real commands and options of our CLI.
"""

from __future__ import annotations

import re

import pytest
import yaml

from tests.deploy.deploy_helpers import DEPLOY, REPO

COMPOSE = DEPLOY / "compose"
STACKS = {
    "school.yml": {"classgate", "prometheus", "grafana"},
    "department.yml": {"repository", "refresh", "prometheus", "grafana"},
}
HOST_PATHS = ("/etc/", "/srv/")  # prepared on the host by the admin (docs/deploy.md), not in the repo


def load(stack: str) -> dict:
    return yaml.safe_load((COMPOSE / stack).read_text())


@pytest.mark.parametrize(("stack", "services"), STACKS.items())
def test_stack_has_its_services_and_only_known_keys(stack: str, services: set[str]) -> None:
    doc = load(stack)
    assert set(doc) <= {"name", "services", "volumes", "networks"}
    assert set(doc["services"]) == services
    for name, service in doc["services"].items():
        assert "image" in service or "build" in service, name
        assert service.get("restart") == "unless-stopped", name


def mounts(stack: str):
    doc = load(stack)
    for name, service in doc["services"].items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            yield name, source, target


@pytest.mark.parametrize("stack", STACKS)
def test_every_repository_file_mounted_exists_and_named_volumes_are_declared(stack: str) -> None:
    declared = set(load(stack).get("volumes") or {})
    for service, source, target in mounts(stack):
        if source.startswith(("./", "../")):
            path = (COMPOSE / source).resolve()
            assert path.exists(), f"{stack}: {service} mounts {source}, which is not in the repository"
            assert REPO in path.parents, f"{stack}: {source} leaves the repository"
        elif source.startswith("/"):
            assert source.startswith(HOST_PATHS), f"{stack}: {service} mounts host path {source}"
        else:
            assert source in declared, f"{stack}: volume {source} is not declared"
        assert target.startswith("/"), target


@pytest.mark.parametrize("stack", STACKS)
def test_builds_point_at_the_dockerfile_and_its_sources_exist(stack: str) -> None:
    for name, service in load(stack)["services"].items():
        build = service.get("build")
        if build is None:
            continue
        context = (COMPOSE / build["context"]).resolve()
        assert context == REPO, name
        dockerfile = context / build["dockerfile"]
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY "):
                for source in line.split()[1:-1]:
                    assert (context / source).exists(), f"Dockerfile copies {source}, which does not exist"


def classgate_commands(stack: str) -> list[list[str]]:
    """The classgate command lines a stack runs (argv after `classgate`)."""
    found = []
    for service in load(stack)["services"].values():
        command = service.get("command")
        if service.get("build") and isinstance(command, list) and not service.get("entrypoint"):
            found.append([part for arg in command for part in arg.split("=", 1)[:1]])
        elif isinstance(command, list):
            for arg in command:
                for match in re.finditer(r"classgate ((?:[a-z-]+ ?)+)", arg):
                    found.append(match.group(1).split())
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_classgate_commands_in_the_stacks_exist(stack: str) -> None:
    from classgate.agent.cli import main

    commands = classgate_commands(stack)
    assert commands, f"{stack} runs no classgate command"
    for argv in commands:
        command = main
        words = [w for w in argv if not w.startswith("-")]
        options = [w for w in argv if w.startswith("-")]
        while words and hasattr(command, "commands") and words[0] in command.commands:
            command = command.commands[words.pop(0)]
        assert not hasattr(command, "commands"), f"{argv}: not a complete classgate command"
        accepted = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert set(options) <= accepted, f"{argv}: unknown options {set(options) - accepted}"


def test_grafana_provisioning_loads_the_shipped_dashboard() -> None:
    provider = yaml.safe_load((COMPOSE / "grafana/provisioning/dashboards/classgate.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    for stack in STACKS:
        targets = {target: source for _, source, target in mounts(stack)}
        assert targets[f"{path}/classgate.json"] == "../grafana/classgate.json"


@pytest.mark.parametrize(
    ("stack", "datasource", "url"),
    [
        ("school.yml", "school.yml", "http://127.0.0.1:9090"),
        ("department.yml", "department.yml", "http://prometheus:9090"),
    ],
)
def test_grafana_datasource_points_at_the_stacks_prometheus(stack: str, datasource: str, url: str) -> None:
    ds = yaml.safe_load((COMPOSE / "grafana/provisioning/datasources" / datasource).read_text())
    assert [d["url"] for d in ds["datasources"]] == [url]
    assert any(source.endswith(f"datasources/{datasource}") for _, source, _ in mounts(stack))


def test_school_stack_matches_the_firewall_and_prometheus_ports() -> None:
    """The proxy port is the one settings.nft redirects to; metrics where Prometheus scrapes."""
    command = load("school.yml")["services"]["classgate"]["command"]
    settings = (DEPLOY / "nftables" / "settings.nft").read_text()
    port = re.search(r"define PROXY_PORT = (\d+)", settings).group(1)
    assert f"--listen=0.0.0.0:{port}" in command and "--mode=transparent" in command
    scrape = (DEPLOY / "prometheus" / "school" / "prometheus.yml").read_text()
    metrics = next(arg.split("=", 1)[1] for arg in command if arg.startswith("--metrics="))
    assert f'"{metrics}"' in scrape
