"""One error base and one way every command ends: a failure is one line and its exit status."""

import ast
import errno
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import pytest

from insurance_charges import cli_runner
from insurance_charges.errors import UsageError, UserError
from insurance_charges.monitoring.recorder import MonitoringError
from insurance_charges.platforms.sagemaker import ModelDirError
from insurance_charges.platforms.sagemaker.launch import LaunchError
from insurance_charges.registry.rollout import RolloutFailed
from insurance_charges.registry.store import Conflict, RegistryError
from insurance_charges.release.errors import ReleaseError
from insurance_charges.serving.model import ModelLoadError
from insurance_charges.settings import SettingsError
from insurance_charges.training.data import DataError
from insurance_charges.training.data_fetch import FetchError

PACKAGE = Path(__file__).resolve().parent.parent / "insurance_charges"


def ending(command, capsys, **options) -> tuple[int, list[str]]:
    """What a command run through the runner ends with: its status and its stderr lines."""
    status = cli_runner.run(command, **options)
    return status, capsys.readouterr().err.splitlines()


def failing(exc: BaseException):
    def command() -> int:
        raise exc

    return command


@pytest.mark.parametrize(
    "error, status, line",
    [
        (UserError("the thing is wrong; do this"), 1, "Error: the thing is wrong; do this"),
        (UserError("stopped", status=9), 9, "Error: stopped"),
        (
            UsageError("--jobs 'x' is not a whole number"),
            2,
            "Error: --jobs 'x' is not a whole number",
        ),
        (SettingsError("PORT='x': not a whole number"), 1, "Error: PORT='x': not a whole number"),
        (ModelLoadError("no model at m.pkl"), 1, "Error: no model at m.pkl"),
        (RegistryError("no store given"), 1, "Error: no store given"),
        (Conflict("v1 exists with other bytes"), 1, "Error: v1 exists with other bytes"),
        (RolloutFailed("prod did not report Ok"), 4, "Error: prod did not report Ok"),
        (ReleaseError("the tree is dirty"), 2, "Error: the tree is dirty"),
        (LaunchError("--role 'x': give an ARN"), 1, "Error: --role 'x': give an ARN"),
        (MonitoringError("METRICS_PORT is PORT"), 1, "Error: METRICS_PORT is PORT"),
        (ModelDirError("two models"), 1, "Error: two models"),
        (DataError("3 rows refused"), 1, "Refused: 3 rows refused"),
        (FetchError("cannot download x"), 75, "Try again later: cannot download x"),
    ],
)
def test_a_user_error_is_its_one_line_and_its_own_status(capsys, error, status, line):
    assert ending(failing(error), capsys) == (status, [line])


@pytest.mark.parametrize("error", [SettingsError, ModelLoadError, RegistryError, MonitoringError])
def test_errors_gunicorn_may_meet_at_start_up_stay_runtime_errors(error):
    # gunicorn prints a RuntimeError raised while it loads the app as one line, and exits 1.
    assert issubclass(error, UserError) and issubclass(error, RuntimeError)


@pytest.mark.parametrize(
    "error, line",
    [
        (ValueError("boom"), "Error: ValueError: boom"),
        (KeyError("age"), "Error: KeyError: 'age'"),
        (RuntimeError("two\nlines"), "Error: RuntimeError: two lines"),
        (UserError("first\nsecond"), "Error: first second"),
        (
            FileNotFoundError(errno.ENOENT, "No such file or directory", "in.csv"),
            "Error: No such file or directory (in.csv)",
        ),
        (OSError("the network is gone"), "Error: the network is gone"),
    ],
)
def test_anything_else_is_one_line_with_no_traceback_and_status_1(capsys, error, line):
    status, lines = ending(failing(error), capsys)
    assert (status, lines) == (1, [line])


def test_ctrl_c_is_one_line_and_the_status_a_shell_gives_it(capsys):
    assert ending(failing(KeyboardInterrupt()), capsys) == (130, ["Error: interrupted"])


@pytest.mark.parametrize("stop", [SystemExit(0), SystemExit(2), GeneratorExit()])
def test_system_exit_and_other_base_exceptions_go_through_untouched(capsys, stop):
    with pytest.raises(type(stop)):
        cli_runner.run(failing(stop))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("status", [0, 1, 3])
def test_a_command_that_returns_ends_with_what_it_returned_and_says_nothing(capsys, status):
    assert ending(lambda: status, capsys) == (status, [])


@pytest.mark.parametrize(
    "error, statuses, status",
    [
        (FileNotFoundError(errno.ENOENT, "gone"), {OSError: 2}, 2),
        (UsageError("x"), {Exception: 5}, 5),
        (RolloutFailed("x"), {RegistryError: 7}, 7),
        (RolloutFailed("x"), {RegistryError: 7, RolloutFailed: 8}, 8),  # the nearest class wins
        (ValueError("x"), {OSError: 2}, 1),
        (KeyboardInterrupt(), {Exception: 2}, 130),
    ],
)
def test_a_command_maps_classes_to_its_own_statuses(capsys, error, statuses, status):
    assert ending(failing(error), capsys, statuses=statuses)[0] == status


def test_what_a_command_explains_is_said_and_ended_with_as_it_is(capsys):
    def explain(exc):
        return (
            UserError(f"{exc}; no output written", status=3) if isinstance(exc, OSError) else None
        )

    said = ending(failing(OSError("disk full")), capsys, explain=explain, statuses={OSError: 2})
    assert said == (3, ["Error: disk full; no output written"])
    assert ending(failing(ValueError("x")), capsys, explain=explain) == (
        1,
        ["Error: ValueError: x"],
    )
    assert ending(failing(FetchError("x")), capsys, explain=lambda exc: exc) == (
        75,
        ["Try again later: x"],
    )


def test_the_line_is_said_inside_the_shield_and_through_say():
    events = []

    @contextmanager
    def shield():
        events.append("held")
        yield
        events.append("released")

    status = cli_runner.run(failing(UsageError("x")), shield=shield, say=events.append)
    assert (status, events) == (2, ["held", "Error: x", "released"])


def test_a_closed_stderr_still_ends_with_the_status(monkeypatch):
    class Closed:
        def write(self, text):
            raise ValueError("I/O operation on closed file")

        def flush(self):
            raise OSError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr("sys.stderr", Closed())
    assert cli_runner.run(failing(UsageError("x"))) == 2


@pytest.mark.parametrize(
    "argv, line",
    [
        (["in.csv", "--nope"], "unrecognized arguments: --nope; see --help"),
        ([], "the following arguments are required: INPUT; see --help"),
    ],
)
def test_the_parser_complains_with_a_usage_error(argv, line):
    parser = cli_runner.Parser(prog="x")
    parser.add_argument("input", metavar="INPUT")
    with pytest.raises(UsageError) as raised:
        parser.parse_args(argv)
    assert str(raised.value) == line


def test_no_two_classes_in_the_package_share_a_name():
    where = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                where[node.name].append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    shared = {name: places for name, places in where.items() if len(places) > 1}
    assert not shared, f"rename one of each: {shared}"
