"""Start-up: what gunicorn reads itself, the address, and Ctrl-C, each one line at most.

`make run` (and the image's launcher) start gunicorn through ``python -m
insurance_charges.startup``: these tests run `make run` itself, as a person does, with real
signals sent to its whole process group, as a terminal's Ctrl-C is.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from devtools.gunicorn_server import free_port
from insurance_charges.settings import SettingsError
from insurance_charges.startup import gunicorn_environ
from insurance_charges.startup.address import bind_address, check_address

from .conftest import ROOT, run_in_session
from .deploy_files import gunicorn_settings

# A line gunicorn's own logger writes: "[2026-12-07 04:23:16 +0000] [10040] [INFO] ...".
GUNICORN_RECORD = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[[A-Z]+\] ")
# make's echo of the run recipe, before anything starts.
RECIPE = 'exec "$VENV/bin/python" -m insurance_charges.startup'
PYTHON = ROOT / ".venv" / "bin" / "python"


def make_run(env: dict[str, str | None], timeout: float = 120) -> subprocess.CompletedProcess:
    """`make run` with these variables (None: unset) until it exits."""
    environ = {**os.environ, "PORT": str(free_port()), **env}
    return run_in_session(
        ["make", "--no-print-directory", "run"],
        {k: v for k, v in environ.items() if v is not None},
        timeout,
    )


def one_error_line(run: subprocess.CompletedProcess) -> str:
    """The run's one ``Error:`` line, having checked nothing else of ours was said."""
    errors = [line for line in run.stderr.splitlines() if line.startswith("Error: ")]
    others = [
        line for line in run.stderr.splitlines() if not line.startswith(("Error: ", "make: *** "))
    ]
    assert run.returncode != 0 and len(errors) == 1 and not others, run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    return errors[0]


# ---- what gunicorn reads itself -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, value, message",
    [
        ("WEB_CONCURRENCY", "two", "WEB_CONCURRENCY='two': not a whole number"),
        ("WEB_CONCURRENCY", "2.0", "WEB_CONCURRENCY='2.0': not a whole number"),
        (
            "FORWARDED_ALLOW_IPS",
            "bogus",
            "FORWARDED_ALLOW_IPS='bogus': 'bogus' is not an IP address",
        ),
        ("FORWARDED_ALLOW_IPS", "10.0.0.1/8", "'10.0.0.1/8' is not an IP address or network"),
        ("FORWARDED_ALLOW_IPS", "127.0.0.1, ,::1", "'' is not an IP address or network"),
        ("GUNICORN_CMD_ARGS", '--max-requests "', "no closing quotation; quote as a shell would"),
        (
            "GUNICORN_CMD_ARGS",
            "--bind 0.0.0.0:80",
            "--bind would override a setting the service checks: set HOST and PORT instead",
        ),
        (
            "GUNICORN_CMD_ARGS",
            "-w 64",
            "-w would override a setting the service checks: set WEB_CONCURRENCY instead",
        ),
        ("GUNICORN_CMD_ARGS", "--config /tmp/other.py", "'--config' is not one of the options"),
        ("GUNICORN_CMD_ARGS", "--reload", "'--reload' is not one of the options"),
        (
            "GUNICORN_CMD_ARGS",
            "--max-requests 40 other:app",
            "'other:app' is not one of the options",
        ),
        ("GUNICORN_CMD_ARGS", "--max-requests many", "--max-requests 'many': not a whole number"),
        ("GUNICORN_CMD_ARGS", "--timeout=-1", "--timeout '-1': not a whole number"),
        ("GUNICORN_CMD_ARGS", "--help", "'--help' is not one of the options"),
        ("SCRIPT_NAME", "/app", "SCRIPT_NAME='/app': gunicorn would answer every request outside"),
        (
            "LISTEN_FDS",
            "x",
            "LISTEN_FDS='x': not a whole number; set by systemd's socket activation",
        ),
        ("LISTEN_PID", "1.5", "LISTEN_PID='1.5': not a whole number"),
        ("GUNICORN_PID", "x", "GUNICORN_PID='x': not a whole number; set by gunicorn itself"),
        ("GUNICORN_FD", "3,x", "GUNICORN_FD='3,x': not a whole number"),
    ],
)
def test_a_variable_gunicorn_reads_itself_is_one_line_before_gunicorn_starts(name, value, message):
    run = make_run({name: value})
    line = one_error_line(run)
    assert line.startswith(f"Error: {name}={value!r}: ") and message in line
    assert "Starting gunicorn" not in run.stderr and "loaded model" not in run.stdout


@pytest.mark.parametrize(
    "text",
    [
        "--max-requests 40 --max-requests-jitter 0",
        "--timeout=60",
        "--graceful-timeout 5 --keep-alive 2 --backlog 64",
    ],
)
def test_gunicorn_cmd_args_may_tune_what_gunicorn_conf_py_sets_as_defaults(text):
    assert gunicorn_environ.check({"GUNICORN_CMD_ARGS": text}) == ()


@pytest.mark.parametrize(
    "environ, seconds",
    [
        ({}, 30),
        ({"GUNICORN_CMD_ARGS": ""}, 30),
        ({"GUNICORN_CMD_ARGS": "--max-requests 40"}, 30),
        ({"GUNICORN_CMD_ARGS": "--timeout 120"}, 120),
        ({"GUNICORN_CMD_ARGS": "--timeout=90"}, 90),
        ({"GUNICORN_CMD_ARGS": "--timeout 90 --backlog 64 --timeout=7"}, 7),
    ],
)
def test_the_request_timeout_is_gunicorn_conf_pys_unless_gunicorn_cmd_args_sets_one(
    environ, seconds
):
    assert gunicorn_environ.request_timeout(environ) == seconds


def test_gunicorn_conf_py_kills_a_request_after_the_default_request_timeout():
    from .deploy_files import gunicorn_settings

    assert gunicorn_settings({})["timeout"] == gunicorn_environ.REQUEST_TIMEOUT_S == 30


def test_the_images_nginx_waits_for_gunicorn_s_timeout_however_it_is_set(tmp_path):
    from insurance_charges.container.launcher import PROXY_OUTWAITS_S, write_config

    write_config(8000, tmp_path, request_timeout_s=120)
    proxy = (tmp_path / "proxy.conf").read_text()
    for name in ("proxy_read_timeout", "proxy_send_timeout"):
        assert f"{name} {120 + PROXY_OUTWAITS_S}s;" in proxy


def test_gunicorns_re_exec_pid_without_its_sockets_is_refused():
    with pytest.raises(SettingsError, match=r"GUNICORN_PID='12': set without GUNICORN_FD"):
        gunicorn_environ.check({"GUNICORN_PID": "12"})


@pytest.mark.parametrize("name", gunicorn_environ.EMPTY_MEANS_UNSET)
def test_an_empty_variable_gunicorn_reads_is_named_for_removal_before_gunicorn_reads_it(name):
    # gunicorn reads "" with int() or as "trust no proxy": here, as for every setting, it is
    # unset (tests/test_server.py starts `make run` with several of them empty).
    assert gunicorn_environ.check({name: "", "HOME": ""}) == (name,)


# ---- where it listens -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "environ, bind",
    [
        ({}, "127.0.0.1:8000"),  # `make run`: this machine only
        ({"HOST": "0.0.0.0", "PORT": "8000"}, "0.0.0.0:8000"),  # the image: every interface
        ({"HOST": "::1", "PORT": "9000"}, "[::1]:9000"),
        ({"HOST": "[::]"}, "[::]:8000"),
        ({"HOST": "localhost"}, "localhost:8000"),
    ],
)
def test_host_and_port_are_where_gunicorn_binds(environ, bind):
    assert gunicorn_settings(environ)["bind"] == bind


@pytest.fixture(
    params=[
        ("127.0.0.1", None),
        ("0.0.0.0", None),
        ("127.0.0.1", "0.0.0.0"),
        ("0.0.0.0", "localhost"),
    ],
    ids=lambda p: f"held-on-{p[0]}-HOST-{p[1]}",
)
def busy(request):
    """A port another server listens on (where, and the HOST `make run` is given)."""
    held_on, host = request.param
    with socket.socket() as holder:
        holder.bind((held_on, 0))
        holder.listen(1)
        yield holder.getsockname()[1], host


@pytest.mark.slow
def test_a_busy_port_is_one_line_naming_it_before_the_model_loads(busy):
    port, host = busy
    run = make_run({"PORT": str(port), "HOST": host})
    line = one_error_line(run)
    assert (
        line.startswith(f"Error: PORT='{port}': already in use on ")
        and "set PORT to a free port" in line
    )
    assert "loaded model" not in run.stdout and "Can't connect" not in run.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "host, message",
    [
        ("127.1", "HOST='127.1': neither an IP address nor a hostname"),
        ("my host", "HOST='my host': neither an IP address nor a hostname"),
        ("0x7f000001", "HOST='0x7f000001': an IPv4 address in an abbreviated form"),
        ("10.0.0.1:80", "HOST='10.0.0.1:80': neither an IP address nor a hostname"),
        ("192.0.2.1", "HOST='192.0.2.1': no interface of this machine has that address"),
        ("name.invalid", "HOST='name.invalid': cannot be resolved"),
    ],
)
def test_an_unusable_host_is_one_line_before_the_model_loads(host, message):
    run = make_run({"HOST": host})
    assert one_error_line(run).startswith(f"Error: {message}")
    assert "loaded model" not in run.stdout


@pytest.mark.slow
def test_a_port_this_user_may_not_open_is_one_line():
    # Root may listen on any port, so under root (as in CI) the check runs in a forked child
    # that has become nobody: a skip there would leave the line untested.
    import pwd

    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: drop root if held, check, report, and leave at once
        try:
            if os.geteuid() == 0:
                nobody = pwd.getpwnam("nobody")
                os.setgroups([])
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
            try:
                check_address("127.0.0.1", 80)
                said = "accepted"
            except SettingsError as exc:
                said = str(exc)
            os.write(write_end, said.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as said:
        message = said.read().decode()
    os.waitpid(child, 0)
    assert "PORT='80': this user may not listen" in message, message


def test_an_ipv6_address_is_bracketed_where_a_port_follows():
    assert (
        bind_address("::1", 8000) == "[::1]:8000"
        and bind_address("127.0.0.1", 1) == "127.0.0.1:1"
        and bind_address("h.example", 2) == "h.example:2"
    )


# ---- Ctrl-C at any moment of the start --------------------------------------------------------


class Started:
    """`make run` in its own session (a terminal's process group), its output kept by line."""

    def __init__(self, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            text=True,
            env={**os.environ, "PORT": str(free_port()), "WEB_CONCURRENCY": "2", **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [
            threading.Thread(target=lambda: self.out.extend(self.proc.stdout)),
            threading.Thread(target=lambda: self.err.extend(self.proc.stderr)),
        ]
        for reader in self.readers:
            reader.start()

    def wait_for(self, marker: str) -> None:
        """Until ``marker`` has been written (it fails if the run ends first)."""
        while not any(marker in line for line in self.out + self.err):
            assert self.proc.poll() is None, "".join(self.out + self.err)
            time.sleep(0.005)

    def interrupt(self) -> int:
        """Ctrl-C as a terminal sends it, to every process of the group; how many lines of
        stderr were already written."""
        written = len(self.err)
        os.killpg(self.proc.pid, signal.SIGINT)
        return written

    def finish(self) -> None:
        """Wait for the end of make and of every process it started."""
        try:
            self.proc.wait(timeout=60)
            deadline = time.monotonic() + 30
            while any(_session(p) == self.proc.pid for p in psutil.process_iter()):
                assert time.monotonic() < deadline, "a process of the run is still running"
                time.sleep(0.1)
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            for reader in self.readers:
                reader.join(timeout=10)
            self.proc.stdout.close()
            self.proc.stderr.close()


def _session(process: psutil.Process) -> int | None:
    try:
        return os.getsid(process.pid)
    except OSError:
        return None


def ours(lines: list[str]) -> list[str]:
    """The lines that are not log records (gunicorn's stop lines, or the app's JSON)."""
    return [
        line
        for line in lines
        if not GUNICORN_RECORD.match(line)
        and not line.startswith('{"time"')
        and line.strip() != RECIPE
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "moment", ["0.5 s: importing", "1.5 s: importing or loading", "loaded model"]
)
def test_ctrl_c_while_it_imports_or_loads_the_model_ends_it_with_one_line_at_most(moment):
    started = Started()
    try:
        if moment.endswith(("importing", "loading")):
            time.sleep(float(moment.split()[0]))
            assert started.proc.poll() is None
        else:
            started.wait_for(moment)  # the fast path is being built and proven: still loading
        after = started.interrupt()
    finally:
        started.finish()
    said = ours(started.err[after:])
    assert len(said) <= 1 and all("Interrupt" in line for line in said), said
    text = "".join(started.out + started.err)
    assert "Traceback" not in text and "Error" not in text.replace("make: ***", "")
    assert started.proc.returncode == -signal.SIGINT  # make, ended by the Ctrl-C itself


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["Listening at", "Booting worker"])
def test_ctrl_c_while_gunicorn_forks_its_workers_is_its_orderly_stop(moment):
    # Here gunicorn's own handlers have taken over: its log records say it stopped, nothing else.
    started = Started()
    try:
        started.wait_for(moment)
        after = started.interrupt()
    finally:
        started.finish()
    assert ours(started.err[after:]) == [], started.err[after:]
    assert "Traceback" not in "".join(started.out + started.err)
    assert started.proc.returncode == -signal.SIGINT


# ---- the image's launcher stopped while gunicorn starts -----------------------------------------


def gunicorn_started(launcher: int) -> bool:
    """Whether the launcher has started gunicorn (other children come and go as it imports)."""
    for child in psutil.Process(launcher).children():
        try:
            if "insurance_charges.startup" in child.cmdline():
                return True
        except psutil.NoSuchProcess:
            pass
    return False


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_launcher_stopped_while_gunicorn_loads_ends_both_at_once_and_quietly(tmp_path, stop):
    # `docker stop` (SIGTERM) or `docker kill -s INT`: the launcher, not its group, gets it.
    launcher = subprocess.Popen(
        [str(PYTHON), "-m", "insurance_charges.container"],
        cwd=ROOT,
        text=True,
        env={**os.environ, "PORT": str(free_port()), "HOST": "127.0.0.1", "TMPDIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        while not gunicorn_started(launcher.pid):
            assert launcher.poll() is None, launcher.stdout.read()
            time.sleep(0.01)
        time.sleep(0.3)  # gunicorn imports: it cannot be listening before its model is loaded
        launcher.send_signal(stop)
        output, _ = launcher.communicate(timeout=60)
    finally:
        try:
            os.killpg(launcher.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert launcher.returncode == 0, output
    assert (
        "Listening at" not in output and "Traceback" not in output and not ours(output.splitlines())
    )


@pytest.mark.slow
def test_the_launcher_refuses_a_busy_port_for_nginx_before_starting_gunicorn(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        run = run_in_session(
            [str(PYTHON), "-m", "insurance_charges.container"],
            {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "TMPDIR": str(tmp_path)},
            timeout=120,
        )
    assert run.returncode == 1 and run.stderr.splitlines() == [
        f"Error: PORT='{port}': already in use on 127.0.0.1:{port} (another server listens "
        "there, perhaps an earlier `make run`); stop it, or set PORT to a free port"
    ]
    assert not Path(tmp_path, "insurance-charges", "gunicorn.sock").exists()


@pytest.mark.parametrize(
    "host, listen",
    [
        ("0.0.0.0", "listen 0.0.0.0:8000 default_server;"),  # the image's HOST
        ("::", "listen [::]:8000 ipv6only=off default_server;"),  # IPv4 too, as gunicorn's "::"
        ("::1", "listen [::1]:8000 default_server;"),
        ("127.0.0.1", "listen 127.0.0.1:8000 default_server;"),
    ],
)
def test_the_images_nginx_listens_where_host_says(tmp_path, host, listen):
    from insurance_charges.container.launcher import write_config

    assert listen in write_config(8000, tmp_path, host=host).read_text()
