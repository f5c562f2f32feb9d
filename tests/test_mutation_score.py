"""`make mutate`'s verdict: the share of mutants killed, read from mutmut's results, and the floor.

Each test lays out mutmut 3.8's result files (``mutants/<package path>.py.meta``, one exit code
per mutant) as `mutmut run` writes them, and reads them with devtools/mutation_score.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench import tables
from devtools import mutation_score

from .conftest import ROOT

# mutmut's exit codes: 1 and 3 kill a mutant, 0 lets it live; 36 is a timeout, 33 a mutant
# no selected test reaches, None one never run (an interrupted run).
KILLED, ERRORED, SURVIVED, TIMEOUT, NO_TESTS = 1, 3, 0, 36, 33


def write_results(mutants: Path, module_path: str, codes: list[int | None]) -> None:
    """One module's results as mutmut writes them: a .meta file beside its mutated copy."""
    meta = mutants / (module_path + ".meta")
    meta.parent.mkdir(parents=True, exist_ok=True)
    stem = module_path.removesuffix(".py").replace("/", ".")
    document = {
        "exit_code_by_key": {f"{stem}.x_f__mutmut_{i}": code for i, code in enumerate(codes)},
        "hash_by_function_name": {},
        "type_check_error_by_key": {},
        "durations_by_key": {},
        "estimated_durations_by_key": {},
    }
    meta.write_text(json.dumps(document))


@pytest.fixture
def mutants(tmp_path: Path) -> Path:
    """A results folder of two modules: 19 of 20 killed in one, 9 of 10 in the other."""
    folder = tmp_path / "mutants"
    write_results(folder, "pkg/core/a.py", [KILLED] * 18 + [ERRORED, SURVIVED])
    write_results(folder, "pkg/core/b.py", [KILLED] * 9 + [TIMEOUT])
    return folder


def test_each_module_counts_exit_codes_1_and_3_as_killed_and_0_as_survived(mutants):
    assert mutation_score.scores(mutants) == [
        ("pkg.core.a", 19, 1, 0, 20),
        ("pkg.core.b", 9, 0, 0, 10),
    ]


@pytest.mark.parametrize("code", [TIMEOUT, NO_TESTS, -9])
def test_a_timeout_an_unreached_or_a_crashed_mutant_is_neither_killed_nor_survived(tmp_path, code):
    write_results(tmp_path, "pkg/m.py", [KILLED, code])
    assert mutation_score.scores(tmp_path) == [("pkg.m", 1, 0, 0, 2)]


def test_a_mutant_an_interrupted_run_left_is_counted_as_not_run_and_fails_the_floor(
    tmp_path, capsys
):
    write_results(tmp_path, "pkg/m.py", [KILLED] * 19 + [None])
    assert mutation_score.scores(tmp_path) == [("pkg.m", 19, 0, 1, 20)]
    assert mutation_score.main(["--mutants", str(tmp_path), "--min", "95.1"]) == 1
    assert capsys.readouterr().out.splitlines()[0] == (
        "pkg.m: 19/20 killed (95.0%), 0 survived, 0 other, 1 not run"
    )


def test_a_module_with_nothing_to_mutate_is_left_out_of_the_shares(mutants, capsys):
    write_results(mutants, "pkg/core/__init__.py", [])
    assert [row[0] for row in mutation_score.scores(mutants)] == ["pkg.core.a", "pkg.core.b"]
    assert mutation_score.main(["--mutants", str(mutants)]) == 0
    assert "__init__" not in capsys.readouterr().out


def test_the_share_over_every_module_is_printed_per_module_and_in_total(mutants, capsys):
    assert mutation_score.main(["--mutants", str(mutants)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "pkg.core.a: 19/20 killed (95.0%), 1 survived, 0 other",
        "pkg.core.b: 9/10 killed (90.0%), 0 survived, 1 other",
        "core: 28/30 killed (93.3%)",
    ]


def test_a_share_below_the_floor_fails_and_says_both(mutants, capsys):
    assert mutation_score.main(["--mutants", str(mutants), "--min", "93.4"]) == 1
    assert "mutation score 93.3% is below the floor of 93.4%" in capsys.readouterr().err


@pytest.mark.parametrize("floor", ["93.3", "28"])
def test_a_share_at_or_above_the_floor_passes(mutants, floor):
    # 28/30 is 93.33...%: a floor equal to the printed share passes
    assert mutation_score.main(["--mutants", str(mutants), "--min", floor]) == 0


def test_no_results_fail_with_the_command_that_makes_them(tmp_path, capsys):
    assert mutation_score.main(["--mutants", str(tmp_path / "mutants")]) == 2
    assert "run `make mutate`" in capsys.readouterr().err


def test_the_recorded_figures_hold_each_module_the_totals_and_the_floor(mutants, tmp_path):
    out = tmp_path / "mutation.json"
    assert mutation_score.main(["--mutants", str(mutants), "--min", "95", "--out", str(out)]) == 1
    recorded = json.loads(out.read_text())
    assert recorded["modules"] == [
        {"module": "pkg.core.a", "killed": 19, "survived": 1, "not_run": 0, "total": 20},
        {"module": "pkg.core.b", "killed": 9, "survived": 0, "not_run": 0, "total": 10},
    ]
    assert (recorded["killed"], recorded["total"], recorded["floor"]) == (28, 30, 95.0)


def test_make_mutate_fails_below_a_floor_of_95_percent():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^MUTATION_FLOOR \?= 95$", makefile, re.M)
    recipe = re.search(r"^mutate:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe, "the Makefile has no mutate target"
    # The score is the recipe's last command, so its exit status is make's.
    last = recipe.group(1).splitlines()[-1]
    assert '-m devtools.mutation_score --min "$$MUTATION_FLOOR"' in last


def test_the_docs_table_shows_a_not_run_column_only_for_a_run_stopped_before_its_end(mutants):
    write_results(mutants, "pkg/core/c.py", [KILLED, None])
    rows = mutation_score.scores(mutants)
    stopped = tables.mutation(mutation_score.record(rows, 95.0))
    assert "| `pkg.core.c` | 1 of 2 | 0 | 0 | 1 | 50.0% |" in stopped.splitlines()
    assert "| **core** | **29 of 32** | | | | **90.6%** |" in stopped.splitlines()
    finished = tables.mutation(mutation_score.record(rows[:2], 95.0))
    assert "Not run" not in finished
    assert "| `pkg.core.a` | 19 of 20 | 1 | 0 | 95.0% |" in finished.splitlines()
