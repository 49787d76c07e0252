"""The sizes, tables and verdict every bench shares (bench/verdict.py)."""

from __future__ import annotations

import argparse

import pytest

from bench.verdict import FULL, SMOKE, Goal, Size, format_table, parse_sized, verdict

FULL_SIZE = {"images": 30, "workers": 3}
SMOKE_SIZE = {"images": 2, "workers": 1}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--label", default="bench")
    return parser


def test_without_options_the_full_size_is_used() -> None:
    options, size = parse_sized(_parser(), FULL_SIZE, SMOKE_SIZE, [])
    assert (options.images, options.workers, options.smoke) == (30, 3, False)
    assert size == Size(FULL, FULL_SIZE)


def test_smoke_selects_the_smoke_size() -> None:
    options, size = parse_sized(_parser(), FULL_SIZE, SMOKE_SIZE, ["--smoke"])
    assert (options.images, options.workers, options.smoke) == (2, 1, True)
    assert size == Size(SMOKE, SMOKE_SIZE)


def test_an_explicit_option_overrides_the_size_and_makes_it_custom() -> None:
    options, size = parse_sized(_parser(), FULL_SIZE, SMOKE_SIZE, ["--smoke", "--images", "5"])
    assert (options.images, options.workers) == (5, 1)
    assert size.name == "custom"
    assert size.values == {"images": 5, "workers": 1}


def test_sizes_must_set_the_same_options() -> None:
    with pytest.raises(ValueError, match="must set the same options"):
        parse_sized(_parser(), FULL_SIZE, {"images": 2}, [])


def test_a_sized_option_must_exist() -> None:
    with pytest.raises(ValueError, match="'tags' is not an option"):
        parse_sized(_parser(), {"tags": 1}, {"tags": 1}, [])


def test_a_sized_option_must_default_to_none() -> None:
    # Otherwise an explicit value equal to the default could not be told from no value.
    with pytest.raises(ValueError, match="'label' must default to None"):
        parse_sized(_parser(), {"label": "x"}, {"label": "y"}, [])


def test_the_table_aligns_columns_and_formats_floats() -> None:
    table = format_table(("method", "requests", "seconds"), [("AQL", 7, 0.123), ("crawl", 505, 1234.5)])
    assert table.splitlines() == [
        "method  requests  seconds",
        "------  --------  -------",
        "AQL            7     0.12",
        "crawl        505   1234.5",
    ]


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="row 1 has 1 cells, the table has 2 columns"):
        format_table(("a", "b"), [("x",)])


def _goals(check_met: bool, target_met: bool) -> list[Goal]:
    return [
        Goal("every image indexed", "2 of 2" if check_met else "1 of 2", "all", check_met, check=True),
        Goal("speed-up", "6.0x" if target_met else "1.9x", ">= 5x", target_met),
    ]


def test_at_full_size_a_missed_target_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert verdict(_goals(True, False), Size(FULL, FULL_SIZE)) == 1
    out = capsys.readouterr().out
    assert "verdict: MISSED speed-up" in out
    assert "size full (images=30, workers=3)" in out


def test_at_full_size_all_met_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert verdict(_goals(True, True), Size(FULL, FULL_SIZE)) == 0
    assert "verdict: all goals met" in capsys.readouterr().out


def test_at_smoke_size_targets_are_shown_but_not_judged(capsys: pytest.CaptureFixture[str]) -> None:
    assert verdict(_goals(True, False), Size(SMOKE, SMOKE_SIZE)) == 0
    out = capsys.readouterr().out
    assert "not judged (missed)" in out
    assert "verdict: checks passed; targets are judged at the full size only" in out


def test_at_smoke_size_a_failed_check_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert verdict(_goals(False, True), Size(SMOKE, SMOKE_SIZE)) == 1
    assert "verdict: MISSED every image indexed" in capsys.readouterr().out


def test_a_bench_without_goals_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one goal"):
        verdict([], Size(FULL, FULL_SIZE))
