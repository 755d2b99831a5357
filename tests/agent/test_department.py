"""`classgate department ...`: init, publish (validated first), refresh, rotate-key, serve + fleet."""

from __future__ import annotations

import datetime as dt
import json
import stat
import threading
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from tuf.api.metadata import Metadata

from classgate.agent.commands.department import department
from classgate.agent.department.repository import Repository, refresh
from tests.agent.sync_helpers import LISTS_V1, LISTS_V2, POLICY_V1, POLICY_V2, cli, write_policy


def run(*args: str):
    return CliRunner().invoke(department, list(args))


def test_init_writes_keys_0600_and_says_where_they_belong(tmp_path):
    out = cli("department", "init", str(tmp_path / "d"), "--keys", "root=3", "--threshold", "root=2",
              "--threshold", "targets=1", "--expires", "timestamp=2")
    keys = tmp_path / "d" / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    pems = list(keys.rglob("*.pem"))
    assert len(pems) == 6 and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in pems)
    assert "root      2-of-3  OFFLINE" in out and "timestamp 1-of-1  ONLINE" in out
    assert "1.root.json" in out and "--trust" in out
    root = Metadata.from_file(str(tmp_path / "d" / "repository" / "metadata" / "1.root.json")).signed
    assert root.consistent_snapshot and root.roles["root"].threshold == 2 and len(root.roles["root"].keyids) == 3
    assert not any((tmp_path / "d" / "repository").rglob("*.pem"))  # nothing secret in what is served
    timestamp = Metadata.from_file(str(tmp_path / "d" / "repository" / "metadata" / "timestamp.json")).signed
    left = timestamp.expires - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=1, hours=23) < left <= dt.timedelta(days=2)


@pytest.mark.parametrize(("args", "message"), [
    (["--threshold", "root=3"], None),  # three keys implied: fine
    (["--keys", "root=1", "--threshold", "root=2"], "threshold (2) must be between 1 and the number of keys (1)"),
    (["--keys", "admin=2"], "expected ROLE=N"),
    (["--threshold", "root=0"], "expected ROLE=N"),
])
def test_init_options(tmp_path, args, message):
    result = run("init", str(tmp_path / "d"), *args)
    if message is None:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output


def test_init_refuses_to_overwrite(tmp_path):
    cli("department", "init", str(tmp_path / "d"))
    result = run("init", str(tmp_path / "d"))
    assert result.exit_code == 1 and "refusing to overwrite" in result.output


@pytest.mark.parametrize(("policy", "lists", "message"), [
    pytest.param(POLICY_V1.replace("action: block", "action: blok", 1), LISTS_V1, "blok", id="bad-action"),
    pytest.param(POLICY_V1.replace("ut1/gambling]", "ut1/gambling, ut1/nosuchlist]"), LISTS_V1, "nosuchlist",
                 id="missing-list"),
    pytest.param(POLICY_V1 + "unknown_key: 1\n", LISTS_V1, "unknown_key", id="unknown-key"),
    pytest.param(POLICY_V1.replace("path: lists/ut1", "path: ../outside/ut1"), LISTS_V1, "policy's folder",
                 id="list-outside-policy-folder"),
])
def test_invalid_policy_is_never_published(tmp_path, policy, lists, message):
    repo = tmp_path / "d"
    cli("department", "init", str(repo))
    for rel, text in LISTS_V1.items():  # the same lists beside the policy's folder, for the "outside" case
        target = tmp_path / rel.replace("lists/", "outside/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    path = write_policy(tmp_path / "p", policy, lists)
    before = sorted(p.name for p in (repo / "repository").rglob("*"))
    result = run("publish", str(repo), "--policy", str(path))
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in (repo / "repository").rglob("*")) == before


def test_publish_needs_the_targets_key(tmp_path):
    repo = tmp_path / "d"
    cli("department", "init", str(repo))
    (tmp_path / "offline").mkdir()
    (repo / "keys" / "targets").rename(tmp_path / "offline" / "targets")
    path = write_policy(tmp_path / "p", POLICY_V1, LISTS_V1)
    result = run("publish", str(repo), "--policy", str(path))
    assert result.exit_code == 1 and "kept OFFLINE" in result.output
    ok = run("publish", str(repo), "--policy", str(path), "--keys", str(tmp_path / "offline"))
    # the online keys are not in --keys: snapshot is missing there
    assert ok.exit_code == 1 and "snapshot" in ok.output
    for role in ("snapshot", "timestamp"):
        (repo / "keys" / role).rename(tmp_path / "offline" / role)
    ok = run("publish", str(repo), "--policy", str(path), "--keys", str(tmp_path / "offline"))
    assert ok.exit_code == 0 and "published bundle 2" in ok.output


def test_publish_uploads_only_changed_files(tmp_path):
    repo = tmp_path / "d"
    cli("department", "init", str(repo))
    first = cli("department", "publish", str(repo), "--policy", str(write_policy(tmp_path / "p1", POLICY_V1, LISTS_V1)))
    assert "published bundle 2: 3 files" in first and "(3 new files" in first
    second = cli("department", "publish", str(repo), "--policy",
                 str(write_policy(tmp_path / "p2", POLICY_V2, LISTS_V2)))
    assert "published bundle 3: 3 files" in second and "(2 new files" in second  # policy + gambling list
    names = [p.name for p in (repo / "repository" / "targets").rglob("*") if p.is_file()]
    assert all(len(n.split(".", 1)[0]) == 64 for n in names)  # hash-prefixed: safe for caches and mirrors


def test_refresh_resigns_timestamp_and_snapshot_when_due(tmp_path):
    repo_dir = tmp_path / "d"
    cli("department", "init", str(repo_dir))
    repo = Repository.open(repo_dir)
    assert refresh(repo) == (1, 2)  # snapshot fresh: only the timestamp
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=5)  # past half the snapshot's 7 days
    assert refresh(repo, now=later) == (2, 3)
    out = cli("department", "refresh", str(repo_dir), "--force-snapshot")
    assert "timestamp 4, snapshot 3" in out


def test_rotate_key_writes_a_new_root_signed_by_old_and_new(tmp_path):
    repo_dir = tmp_path / "d"
    cli("department", "init", str(repo_dir))
    out = cli("department", "rotate-key", str(repo_dir), "root")
    assert "root version 2" in out and "retired" in out
    meta = repo_dir / "repository" / "metadata"
    v1 = Metadata.from_file(str(meta / "1.root.json"))
    v2 = Metadata.from_file(str(meta / "2.root.json"))
    v1.signed.verify_delegate("root", v2.signed_bytes, v2.signatures)  # old keys vouch for the new root
    v2.signed.verify_delegate("root", v2.signed_bytes, v2.signatures)  # and it stands on its own
    assert set(v1.signed.roles["root"].keyids).isdisjoint(v2.signed.roles["root"].keyids)
    assert len(list((repo_dir / "keys" / "retired").glob("root-*.pem"))) == 1
    bad = run("rotate-key", str(repo_dir), "admin")
    assert bad.exit_code == 2


def test_serve_and_fleet(tmp_path):
    from classgate.agent.department.server import make_server

    repo = tmp_path / "d"
    cli("department", "init", str(repo))
    (repo / "keys" / "secret.txt").write_text("never served")
    server = make_server(repo)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with urllib.request.urlopen(f"{base}/metadata/1.root.json") as r:
            assert json.loads(r.read())["signed"]["_type"] == "root"
        for path in ("/../keys/secret.txt", "/metadata/", "/keys/secret.txt"):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(base + path)
            assert e.value.code == 404
        report = {"gateway": "thpt-chu-van-an", "state": "ok", "active_version": 7, "error": None,
                  "client_ip": "10.10.1.2"}
        req = urllib.request.Request(f"{base}/report", data=json.dumps(report).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            assert r.status == 200
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(f"{base}/report", data=b"x" * 20000, method="POST"))
        assert e.value.code == 413
        with urllib.request.urlopen(f"{base}/fleet") as r:
            fleet = json.loads(r.read())
        assert fleet["count"] == 1 and fleet["versions"] == {"7": 1}
        assert "client_ip" not in json.dumps(fleet)  # only the fields a report may carry are kept
    finally:
        server.shutdown()
        server.server_close()
    assert "thpt-chu-van-an" in (repo / "fleet.json").read_text()


def test_gateway_reports_to_the_fleet(tmp_path, serve, gateway_factory):
    from classgate.agent.department.server import make_server

    repo = tmp_path / "d"
    cli("department", "init", str(repo))
    cli("department", "publish", str(repo), "--policy", str(write_policy(tmp_path / "p", POLICY_V1, LISTS_V1)))
    server = make_server(repo)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        gw = gateway_factory(base, repo / "repository" / "metadata" / "1.root.json", report_to=base + "report")
        gw.start()
        assert gw.sync()
        with urllib.request.urlopen(base + "fleet") as r:
            fleet = json.loads(r.read())
        (_name, info), = fleet["gateways"].items()
        assert info["active_version"] == 2 and info["state"] == "ok" and info["error"] is None
        # The group table: each group's place in the tree and size, never an address.
        assert info["groups"] == {"students": {"in": None, "ipv4": 65536, "ipv6_networks": 0}}, info
        assert "/" not in json.dumps(info["groups"])
    finally:
        server.shutdown()
        server.server_close()


def test_bundle_files_are_relative_to_the_policy(tmp_path):
    from classgate.agent.department.publish import bundle_files

    files = bundle_files(write_policy(tmp_path / "p", POLICY_V1, {**LISTS_V1, "lists/ut1/gambling/urls": "x.example/a\n",
                                                                  "lists/ut1/unused/domains": "u.example\n"}))
    assert sorted(files) == ["department.yaml", "lists/ut1/gambling/domains", "lists/ut1/gambling/urls",
                             "lists/ut1/social_networks/domains"]
    assert all(isinstance(p, Path) and p.is_absolute() for p in files.values())


def test_prune_keeps_the_newest_bundles_and_every_root(tmp_path, serve, gateway_factory):
    repo = tmp_path / "d"
    cli("department", "init", str(repo))
    cli("department", "rotate-key", str(repo), "root")
    for i in range(5):
        lists = {**LISTS_V1, "lists/ut1/gambling/domains": f"casino-{i}.example\n"}
        cli("department", "publish", str(repo), "--policy", str(write_policy(tmp_path / f"p{i}", POLICY_V1, lists)))
    gambling = repo / "repository" / "targets" / "policy" / "lists" / "ut1" / "gambling"
    assert len(list(gambling.iterdir())) == 5
    out = cli("department", "prune", str(repo), "--keep", "2")
    assert "kept the newest 2 bundles" in out
    assert len(list(gambling.iterdir())) == 2
    meta = repo / "repository" / "metadata"
    assert sorted(p.name for p in meta.glob("*.root.json")) == ["1.root.json", "2.root.json"]
    assert sorted(p.name for p in meta.glob("*.targets.json")) == ["5.targets.json", "6.targets.json"]
    assert run("prune", str(repo), "--keep", "1").exit_code == 2
    server = serve(repo / "repository")  # a fresh gateway still gets the newest bundle after pruning
    gw = gateway_factory(server.url, meta / "1.root.json")
    gw.start()
    assert gw.sync(), gw.status
    assert gw.status["active_version"] == 6 and gw.decide("http://casino-4.example/") == "block"


def test_serve_listen_option(tmp_path):
    cli("department", "init", str(tmp_path / "d"))
    assert run("serve", str(tmp_path / "d"), "--listen", "nonsense").exit_code == 2
    missing = run("serve", str(tmp_path / "nowhere"), "--listen", "127.0.0.1:0")
    assert missing.exit_code == 1 and "not a Department repository" in missing.output


def test_init_says_what_publish_expects_and_can_start_from_the_sample_policy(tmp_path):
    from tests.agent.sync_helpers import cli

    bare = cli("department", "init", str(tmp_path / "bare"))
    assert "publish takes only lists in the policy's folder or below" in bare
    assert not (tmp_path / "bare" / "policy").exists()

    out = cli("department", "init", str(tmp_path / "d"), "--sample-policy")
    policy = tmp_path / "d" / "policy" / "department.yaml"
    assert policy.is_file() and (tmp_path / "d" / "policy" / "lists" / "ut1").is_dir()
    assert f"classgate department publish {tmp_path / 'd'} --policy {policy}" in out
    assert "published bundle" in cli("department", "publish", str(tmp_path / "d"), "--policy", str(policy))
