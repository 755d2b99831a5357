"""Groups form a tree: a school cannot carve its clients out from under the Department's groups (and locks)."""

from __future__ import annotations

import pytest

from classgate.policies.document import read_document
from classgate.policies.errors import PolicyError
from classgate.policies.groups import address_counts, group_path

DEPARTMENT = """\
classgate: 1
name: dept
groups:
  students: {networks: [10.10.0.0/16, "fd00:10::/48"]}
  teachers: {networks: [10.20.0.0/24]}
"""


def overlay(groups: str) -> str:
    return f"classgate: 1\noverlay: true\nname: school\ngroups:\n{groups}"


@pytest.mark.parametrize(
    ("groups", "path"),
    [
        # carving by a smaller network: inside students, so under students
        ("  vip: {networks: [10.10.0.0/17]}\n", ("vip", "students")),
        ("  lab: {networks: [10.10.5.0/24]}\n", ("lab", "students")),
        # IPv6
        ('  lab6: {networks: ["fd00:10:0:5::/64"]}\n', ("lab6", "students")),
        # a school group outside every Department network: under the Department's default
        ("  library: {networks: [192.168.20.0/24]}\n", ("library", "default")),
        # named with `in:`: for networks outside the Department's (the school's own address plan)
        ("  wifi: {networks: [192.168.10.0/24], in: students}\n", ("wifi", "students")),
        ("  guests: {networks: [192.168.30.0/24], in: default}\n", ("guests", "default")),
        # `in:` agreeing with the networks
        ("  vip: {networks: [10.10.0.0/17], in: students}\n", ("vip", "students")),
        # a subgroup of a subgroup is placed under the Department group (school groups are not parents)
        ("  vip: {networks: [10.10.0.0/17]}\n  vvip: {networks: [10.10.0.0/24]}\n", ("vvip", "students")),
    ],
)
def test_school_groups_are_placed_under_the_department_group_they_are_in(write_yaml, groups, path):
    doc = read_document(write_yaml(DEPARTMENT), write_yaml(overlay(groups), "school.yaml"))
    name = path[0]
    assert group_path(doc.groups, name) == path


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        # partial overlap: part of students would leave the tree
        ("  half: {networks: [10.10.0.0/15]}\n", "network 10.10.0.0/15 overlaps Department group 'students'"),
        ("  half: {networks: [10.20.0.0/23]}\n", "overlaps Department group 'teachers'"),
        ('  half6: {networks: ["fd00::/16"]}\n', "overlaps Department group 'students'"),
        # the same network as a Department group: one client, one group
        ("  vip: {networks: [10.10.0.0/16]}\n", "network 10.10.0.0/16 is in both group 'students' and group 'vip'"),
        # `in:` that disagrees with the networks: membership follows the networks
        ("  vip: {networks: [10.10.0.0/17], in: teachers}\n", "lie inside Department group 'students'"),
        ("  vip: {networks: [10.10.0.0/17], in: default}\n", "cannot be `in: default`"),
        ("  x: {networks: [192.168.1.0/24], in: nosuch}\n", "`in: nosuch` names no Department group"),
        # `in:` on the Department's own group
        ("  students: {networks: [192.168.10.0/24], in: teachers}\n", "`in:` places the school's own groups"),
    ],
)
def test_escaping_the_department_groups_is_an_error_naming_both(write_yaml, groups, message):
    with pytest.raises(PolicyError) as info:
        read_document(write_yaml(DEPARTMENT), write_yaml(overlay(groups), "school.yaml"))
    text = str(info.value)
    assert message in text, text
    assert "school.yaml:" in text


def test_in_is_for_overlays_only(write_yaml):
    with pytest.raises(PolicyError, match="`in:` is for a school overlay"):
        read_document(write_yaml(DEPARTMENT.replace("{networks: [10.20.0.0/24]}",
                                                    "{networks: [10.20.0.0/24], in: students}")))


def test_address_counts(write_yaml):
    doc = read_document(write_yaml(DEPARTMENT), write_yaml(overlay(
        "  students: {networks: [192.168.10.0/24]}\n  library: {networks: [192.168.20.0/25]}\n"), "school.yaml"))
    counts = address_counts(doc.groups)
    assert counts["library"] == (128, 0) and counts["teachers"] == (256, 0)
    assert counts["students"] == (65536 + 256, 1)
    assert str(counts["students"]) == "65,792 IPv4 addresses + 1 IPv6 network"
