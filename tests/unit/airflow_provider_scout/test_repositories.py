"""Which repositories store a configured key's tags: local, remote (-cache) and virtual (members)."""

from __future__ import annotations

from airflow_provider_scout.repositories import RepositoryLayout, StorageKey, repository_class


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
