"""write_whole: a file is replaced in full or left as it was, without temporary leftovers."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_scout.whole_file import IncompleteWriteError, write_whole


def test_a_file_is_written_whole_in_a_directory_made_for_it(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "plan.jsonl"
    write_whole(target, b"first")
    write_whole(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["plan.jsonl"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "sbom.json"
    write_whole(target, b"old")

    def full_disk(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("airflow_provider_scout.whole_file.os.replace", full_disk)
    with pytest.raises(IncompleteWriteError, match=r"OSError: .*No space left on device"):
        write_whole(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["sbom.json"]


def test_a_directory_that_cannot_be_made_is_reported(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(IncompleteWriteError, match=r"FileExistsError|NotADirectoryError"):
        write_whole(tmp_path / "file" / "sbom.json", b"x")
