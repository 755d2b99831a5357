"""Attacks and faults against the sync agent, each through a real HTTP server and a real repository.

Every case starts with a gateway enforcing bundle 2 (the Department's first publish: casino-one blocked),
then the Department publishes bundle 3 (casino-two added) and the server or network misbehaves. The gateway
must stay on bundle 2 — on disk, in the proxy's PolicyHolder, in its decisions — with the reason in the
status file and in the metrics; once the server behaves again, it reaches bundle 3.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from classgate.agent.department.publish import publish
from classgate.agent.department.repository import Repository
from classgate.agent.sync.transport import Limits
from tests.agent.sync_helpers import (
    LISTS_V2,
    OVERLAY,
    POLICY_V2,
    cli,
    write_policy,
)

FIRST, SECOND = 2, 3  # bundle versions of the template's two publishes (targets v1 is the empty init)


def at_first_bundle(template, tmp_path, serve, gateway_factory, overlay=None, **kw):
    """Department at bundle 3 (copied), server up, gateway synced to bundle 2 (by replaying its timestamp)."""
    repo = template.copy(tmp_path / "department")
    server = serve(repo / "repository")
    first_timestamp = (template.base / "v1" / "repository" / "metadata" / "timestamp.json").read_bytes()
    server.on(r"^/metadata/timestamp\.json$", "bytes", first_timestamp)
    gw = gateway_factory(server.url, repo / "repository" / "metadata" / "1.root.json", overlay, **kw)
    assert gw.start() is None  # fresh gateway: nothing installed yet
    assert gw.sync(), gw.status
    assert gw.status["active_version"] == FIRST
    server.clear()
    return repo, server, gw


def assert_still_first(gw, reason: str, metric_reason: str) -> None:
    status = gw.status
    assert status["active_version"] == FIRST
    assert status["state"] == "failing"
    assert status["last_error"]["reason"] == reason, status["last_error"]
    assert (gw.state_dir / "sync" / "current").resolve().name == f"v{FIRST}"
    assert gw.decide("http://casino-one.example/") == "block"
    assert gw.decide("http://casino-two.example/") == "allow"  # bundle 3 never took effect
    assert f'classgate_sync_failures_total{{reason="{metric_reason}"}} 1.0' in gw.exposition()
    assert 'classgate_sync_bundle_version 2.0' in gw.exposition()


def assert_reaches_second(gw) -> None:
    assert gw.sync(), gw.status["last_error"]
    assert gw.status["active_version"] == SECOND
    assert gw.status["state"] == "ok"
    assert gw.decide("http://casino-two.example/") == "block"


# (what the server does to which path) -> (status reason, metric reason)
SERVER_FAULTS = [
    pytest.param(r"gambling/.*domains$", "tamper", "bad_hash", "verify", id="tampered-list-file"),
    pytest.param(r"department\.yaml$", "tamper", "bad_hash", "verify", id="tampered-policy"),
    pytest.param(r"bundle\.json$", "tamper", "bad_hash", "verify", id="tampered-manifest"),
    pytest.param(r"3\.targets\.json$", "tamper", "bad_hash", "verify", id="tampered-targets-metadata"),
    pytest.param(r"^/metadata/timestamp\.json$", "tamper", "bad_metadata", "verify", id="tampered-timestamp"),
    pytest.param(r"^/metadata/timestamp\.json$", "endless", "oversized", "too_large", id="endless-metadata"),
    pytest.param(r"gambling/.*domains$", "endless", "oversized", "too_large", id="endless-target"),
    pytest.param(r"gambling/.*domains$", "truncate", "truncated", "network", id="truncated-target"),
    pytest.param(r"3\.snapshot\.json$", "truncate", "truncated", "network", id="truncated-metadata"),
    pytest.param(r"^/metadata/timestamp\.json$", "drip", "timeout", "network", id="slow-drip"),
    pytest.param(r"^/metadata/timestamp\.json$", "500", "http_error", "http_status", id="http-500"),
    pytest.param(r".", "500", "http_error", "http_status", id="everything-500"),
    pytest.param(r"gambling/.*domains$", "500", "http_error", "http_status", id="target-500"),
    pytest.param(r"^/metadata/timestamp\.json$", "garbage", "bad_metadata", "verify", id="garbage"),
    pytest.param(r"^/metadata/timestamp\.json$", "html", "bad_metadata", "verify", id="html-error-page"),
    pytest.param(r"^/metadata/2\.root\.json$", "html", "bad_metadata", "verify", id="html-instead-of-404"),
    pytest.param(r"^/metadata/timestamp\.json$", "reset", "network", "network", id="connection-reset"),
]


@pytest.mark.parametrize(("pattern", "behavior", "reason", "metric_reason"), SERVER_FAULTS)
def test_server_fault_keeps_last_verified_bundle(department_template, tmp_path, serve, gateway_factory,
                                                 pattern, behavior, reason, metric_reason):
    _, server, gw = at_first_bundle(department_template, tmp_path, serve, gateway_factory,
                                    limits=Limits(connect_timeout=2, read_timeout=1, deadline=1.5))
    server.on(pattern, behavior)
    assert not gw.sync()
    assert_still_first(gw, reason, metric_reason)
    server.clear()
    assert_reaches_second(gw)


def test_department_down(department_template, tmp_path, serve, gateway_factory):
    _, server, gw = at_first_bundle(department_template, tmp_path, serve, gateway_factory)
    server.close()
    assert not gw.sync()
    assert_still_first(gw, "network", "network")


def test_timestamp_signed_by_unknown_key(department_template, tmp_path, serve, gateway_factory):
    from tuf.api.metadata import Metadata

    from classgate.agent.department import keys

    repo, server, gw = at_first_bundle(department_template, tmp_path, serve, gateway_factory)
    timestamp = Metadata.from_file(str(repo / "repository" / "metadata" / "timestamp.json"))
    attacker, _ = keys.generate()
    timestamp.signatures.clear()
    timestamp.sign(attacker.signer)
    server.on(r"^/metadata/timestamp\.json$", "bytes", timestamp.to_bytes())
    assert not gw.sync()
    assert_still_first(gw, "bad_signature", "verify")


def test_whole_repository_from_an_attacker(department_template, tmp_path, serve, gateway_factory):
    """Someone with their own keys serves a complete, self-consistent repository that allows gambling."""
    _, server, gw = at_first_bundle(department_template, tmp_path, serve, gateway_factory)
    evil = tmp_path / "attacker"
    cli("department", "init", str(evil))
    evil_policy = POLICY_V2.replace("action: block, categories: [gambling]", "action: allow, categories: [gambling]")
    cli("department", "publish", str(evil), "--policy", str(write_policy(tmp_path / "evil", evil_policy, LISTS_V2)))
    server.root = evil / "repository"
    assert not gw.sync()
    assert_still_first(gw, "bad_signature", "verify")


def test_replayed_old_timestamp_is_a_rollback(department_template, tmp_path, serve, gateway_factory):
    _, server, gw = at_first_bundle(department_template, tmp_path, serve, gateway_factory)
    assert_reaches_second(gw)
    old = (department_template.base / "v1" / "repository" / "metadata" / "timestamp.json").read_bytes()
    server.on(r"^/metadata/timestamp\.json$", "bytes", old)
    assert not gw.sync()
    status = gw.status
    assert status["active_version"] == SECOND and status["last_error"]["reason"] == "rollback"
    assert 'classgate_sync_failures_total{reason="rollback"} 1.0' in gw.exposition()
    gw.restart()  # the trusted versions are on disk: a reboot does not reopen the door
    gw.start()
    assert not gw.sync()
    assert gw.status["last_error"]["reason"] == "rollback"
    assert gw.decide("http://casino-two.example/") == "block"


def test_expired_metadata_is_refused(department_template, tmp_path, serve, gateway_factory):
    """Freeze: metadata signed days ago (time injected at the Department) must not be accepted."""
    _repo, server, gw = at_first_bundle(department_template, tmp_path, serve, gateway_factory)
    fresh = department_template.copy(tmp_path / "frozen", "v1")
    past = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=3)
    publish(Repository.open(fresh), write_policy(tmp_path / "p", POLICY_V2, LISTS_V2), now=past)
    server.root = fresh / "repository"
    assert not gw.sync()
    assert_still_first(gw, "expired", "expired")


def test_corrupted_newest_bundle_on_disk_falls_back(department_template, tmp_path, serve, gateway_factory):
    _, server, gw = at_first_bundle(department_template, tmp_path, serve, gateway_factory)
    assert_reaches_second(gw)
    victim = gw.state_dir / "sync" / "current" / "files" / "lists" / "ut1" / "gambling" / "domains"
    victim.write_text("casino-one.example\n")  # someone edited the installed list by hand
    server.close()  # and the Department is unreachable at boot
    gw.restart()
    installed = gw.start()
    assert installed.version == FIRST  # newest that re-verifies
    assert any("does not verify" in n for n in gw.status["notes"])
    assert gw.decide("http://casino-one.example/") == "block"


def test_reboot_without_network_enforces_last_bundle(department_template, tmp_path, serve, gateway_factory):
    _, server, gw = at_first_bundle(department_template, tmp_path, serve, gateway_factory)
    assert_reaches_second(gw)
    server.close()
    from classgate.agent.sync.gateway_addon import installed_policy

    expected = gw.state_dir / "sync" / "bundles" / "v3" / "files" / "department.yaml"
    assert installed_policy(gw.state_dir, gw.trust) == expected
    assert installed_policy(gw.state_dir, b"{}") is None  # not the trust root: nothing verifies
    gw.restart()
    assert gw.holder.policy is None
    installed = gw.start()  # no network call happens before this returns
    assert installed.version == SECOND
    assert gw.decide("http://casino-two.example/") == "block"
    assert not gw.sync()
    assert gw.status["active_version"] == SECOND and gw.status["last_error"]["reason"] == "network"


@pytest.mark.parametrize("roles", [("targets",), ("timestamp", "snapshot"), ("root",)])
def test_key_rotation_is_accepted(department_template, tmp_path, serve, gateway_factory, roles):
    repo, _server, gw = at_first_bundle(department_template, tmp_path, serve, gateway_factory)
    assert_reaches_second(gw)
    for role in roles:
        cli("department", "rotate-key", str(repo), role)
    assert gw.sync(), gw.status["last_error"]
    third = POLICY_V2 + "# v3\n"
    lists = {**LISTS_V2, "lists/ut1/gambling/domains": "casino-one.example\ncasino-two.example\ncasino-three.example\n"}
    cli("department", "publish", str(repo), "--policy", str(write_policy(tmp_path / "p3", third, lists)))
    assert gw.sync(), gw.status["last_error"]
    assert gw.decide("http://casino-three.example/") == "block"
    version = gw.status["active_version"]
    gw.restart()  # the bundle signed with the new keys re-verifies offline through the new root chain
    assert gw.start().version == version


def test_bundle_that_does_not_validate_with_the_overlay_is_refused(department_template, tmp_path, serve,
                                                                   gateway_factory):
    overlay = tmp_path / "school.yaml"
    overlay.write_text(OVERLAY)
    repo, _server, gw = at_first_bundle(department_template, tmp_path, serve, gateway_factory, overlay)
    assert gw.decide("http://school-added.example/") == "block"
    locked = POLICY_V2.replace("social: {include: [ut1/social_networks]}",
                               "social: {include: [ut1/social_networks], locked: true}")
    out = cli("department", "publish", str(repo), "--policy", str(write_policy(tmp_path / "p", locked, LISTS_V2)))
    new_version = int(out.split()[2].rstrip(":"))
    assert not gw.sync()
    status = gw.status
    assert status["last_error"]["reason"] == "invalid_policy"
    assert status["rejected"]["version"] == new_version and "locked" in status["rejected"]["message"]
    assert 'classgate_sync_bundles_rejected_total{reason="invalid_policy"} 1.0' in gw.exposition()
    assert status["active_version"] == FIRST and gw.decide("http://school-added.example/") == "block"
    assert not any(p.name == f"v{new_version}" for p in (gw.state_dir / "sync" / "bundles").iterdir())
    assert not gw.sync()  # still refused on the next poll, without being installed
    assert json.loads((gw.state_dir / "status.json").read_text())["consecutive_failures"] == 2


def test_unchanged_list_is_not_downloaded_again(department_template, tmp_path, serve, gateway_factory):
    _, server, gw = at_first_bundle(department_template, tmp_path, serve, gateway_factory)
    server.log.clear()
    assert_reaches_second(gw)
    fetched = [s.path for s in server.requests("^/targets/")]
    assert any("gambling" in p for p in fetched) and any("department.yaml" in p for p in fetched)
    assert not any("social_networks" in p for p in fetched), fetched
    server.log.clear()
    assert gw.sync()  # idle poll: the root probe (404) and the timestamp, nothing else
    assert [(s.path, s.status) for s in server.log] == [("/metadata/2.root.json", 404),
                                                        ("/metadata/timestamp.json", 200)]


def test_fresh_gateway_never_enforces_unsigned_content(tmp_path, serve, gateway_factory):
    """The trust root is required; a server with metadata from another root is refused from the start."""
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    cli("department", "init", str(mine))
    cli("department", "init", str(theirs))
    policy = write_policy(tmp_path / "p", POLICY_V2, LISTS_V2)
    cli("department", "publish", str(theirs), "--policy", str(policy))
    server = serve(theirs / "repository")
    gw = gateway_factory(server.url, mine / "repository" / "metadata" / "1.root.json")
    assert gw.start() is None
    assert not gw.sync()
    assert gw.status["state"] == "no_bundle" and gw.status["last_error"]["reason"] == "bad_signature"
    assert gw.holder.policy is None


def test_status_cli(department_template, tmp_path, serve, gateway_factory):
    from click.testing import CliRunner

    from classgate.agent.commands.sync import status

    _, server, gw = at_first_bundle(department_template, tmp_path, serve, gateway_factory)
    server.on(r"timestamp", "500")
    gw.sync()
    human = CliRunner().invoke(status, ["--state-dir", str(gw.state_dir)])
    assert human.exit_code == 0 and "active bundle:     2" in human.output and "http_error" in human.output
    as_json = CliRunner().invoke(status, ["--state-dir", str(gw.state_dir), "--json"])
    assert json.loads(as_json.output)["last_error"]["reason"] == "http_error"
    missing = CliRunner().invoke(status, ["--state-dir", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "no status yet" in missing.output


def test_two_agents_on_one_state_dir_take_turns(department_template, tmp_path, serve, gateway_factory):
    """A cron `classgate sync` and `classgate run --sync-from` on one state dir never write at once."""
    import threading

    _, _server, gw = at_first_bundle(department_template, tmp_path, serve, gateway_factory)
    other = gw.service.store.acquire()  # the other agent is installing
    results: list[bool] = []
    poll = threading.Thread(target=lambda: results.append(gw.sync()))
    poll.start()
    poll.join(1.0)
    assert poll.is_alive() and gw.status["active_version"] == FIRST  # waits for its turn
    gw.service.store.release(other)
    poll.join(10)
    assert results == [True] and gw.status["active_version"] == SECOND
