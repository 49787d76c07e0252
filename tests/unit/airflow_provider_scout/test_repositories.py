"""Which repositories store a configured key's tags: local, remote (-cache) and virtual (members)."""

from __future__ import annotations

from airflow_provider_scout.repositories import RepositoryLayout, StorageKey, VirtualWalk, repository_class


def test_classes_come_from_type_in_lists_and_rclass_alone() -> None:
    assert repository_class({"type": "VIRTUAL"}) == "virtual"
    assert repository_class({"rclass": "remote"}) == "remote"
    assert repository_class({"type": "FEDERATED"}) == "local"
    assert repository_class({}) == "local"


def test_virtual_expands_to_members_in_order_and_remotes_to_caches() -> None:
    layout = RepositoryLayout(
        classes={"v": "virtual", "inner": "virtual", "a": "local", "hub": "remote", "b": "local"},
        members={"v": ("a", "hub", "inner"), "inner": ("b", "v")},  # a cycle is cut
    )
    keys, problems = layout.storage_keys(["v", "hub", "unknown"])
    assert keys == [
        StorageKey("a", "v", 0),
        StorageKey("hub-cache", "v", 1),
        StorageKey("b", "v", 2),
        StorageKey("hub-cache", "hub", 0),
        StorageKey("unknown", "unknown", 0),
    ]
    assert problems == []
    assert layout.configured_key("hub-cache", ["v", "hub"]) == "v"
    assert layout.configured_key("hub-cache", ["hub"]) == "hub"
    assert layout.configured_key("elsewhere", ["v"]) is None


def test_a_virtual_without_members_is_named() -> None:
    layout = RepositoryLayout(classes={"empty": "virtual", "unread": "virtual"}, members={"empty": ()})
    keys, problems = layout.storage_keys(["empty", "unread"])
    assert keys == []
    assert any("'empty' has no Docker member" in p for p in problems)
    assert any("members of virtual repository 'unread'" in p for p in problems)


def _configuration(*members: str) -> dict[str, object]:
    return {"rclass": "virtual", "repositories": list(members)}


def test_the_walk_asks_for_each_virtual_reached_nested_ones_included_once_each() -> None:
    layout = RepositoryLayout(
        classes={"outer": "virtual", "inner": "virtual", "deep": "virtual", "a": "local", "b": "local"}
    )
    answers = {
        "outer": _configuration("a", "inner"),
        "inner": _configuration("deep", "outer"),  # a cycle back to outer ends
        "deep": _configuration("b", "helm-local"),
    }
    walk = VirtualWalk(layout, ["outer", "a"])
    asked, left_out = [], []
    for key in walk:
        asked.append(key)
        left_out += walk.read(key, answers[key])
    assert asked == ["outer", "inner", "deep"]
    assert left_out == ["helm-local"]  # not among the Docker repositories listed
    assert layout.members == {"outer": ("a", "inner"), "inner": ("deep", "outer"), "deep": ("b",)}
    keys, problems = layout.storage_keys(["outer"])
    assert [(k.storage, k.configured) for k in keys] == [("a", "outer"), ("b", "outer")]
    assert problems == []
    assert layout.configured_key("b", ["outer"]) == "outer"


def test_a_virtual_the_caller_could_not_read_stays_unknown_and_is_not_asked_again() -> None:
    layout = RepositoryLayout(classes={"outer": "virtual", "inner": "virtual", "a": "local"})
    walk = VirtualWalk(layout, ["outer", "outer"])
    asked = []
    for key in walk:
        asked.append(key)
        if key == "outer":
            walk.read(key, _configuration("a", "inner"))
    assert asked == ["outer", "inner"]
    _, problems = layout.storage_keys(["outer"])
    assert problems == ["members of virtual repository 'inner' (configured as 'outer') are unknown"]


def test_the_walk_asks_nothing_without_virtuals_or_when_members_are_known() -> None:
    layout = RepositoryLayout(classes={"v": "virtual", "a": "local"}, members={"v": ("a",)})
    assert list(VirtualWalk(layout, ["v", "a", "unknown"])) == []
