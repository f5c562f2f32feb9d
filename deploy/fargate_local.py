"""Run ecs-fargate.yaml's task with docker exactly as the template defines it; measure its memory.

    .venv/bin/python deploy/fargate_local.py IMAGE [--seconds 60] [--clients 4]

Every setting comes from the template: each container's user, read-only root, mount points,
environment, capabilities, entry point and command, the app's port, health check and stop
timeout, and the task's CPU and memory as docker limits. The task's volume is a fresh directory
owned by root with mode 0755, as Fargate creates a bind mount when the image declares no VOLUME
there; containers another depends on with SUCCESS run to completion first, as ECS runs them.
The command prints the memory `docker stats` reports during start-up and under CLIENTS clients
posting full 10,000-record batches: the figure behind the template's Memory.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

TEMPLATE = Path(__file__).resolve().with_name("ecs-fargate.yaml")
sys.path.insert(0, str(TEMPLATE.parent.parent))


def load_template(path: Path = TEMPLATE) -> dict:
    """The CloudFormation template as data (intrinsic functions as {"Fn::...": ...})."""
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.load(str(path))


def task_definition(template: dict) -> dict:
    """The task definition's properties."""
    return template["Resources"]["TaskDefinition"]["Properties"]


def containers(template: dict) -> dict[str, dict]:
    """Container definitions by name, in the template's order."""
    return {c["Name"]: c for c in task_definition(template)["ContainerDefinitions"]}


def app_container(template: dict) -> dict:
    """The essential container the load balancer sends requests to."""
    return next(c for c in containers(template).values() if c.get("PortMappings"))


def environment(container: dict) -> dict[str, str]:
    """The container's literal environment (secrets are not in it)."""
    return {e["Name"]: e["Value"] for e in container.get("Environment", [])}


def health_command(container: dict) -> list[str]:
    """The health check's command as an argument list (its CMD form)."""
    kind, *command = container["HealthCheck"]["Command"]
    assert kind == "CMD", f"health check {kind!r}: only the CMD form is used here"
    return command


def docker_args(container: dict, task: dict, image: str, name: str,
                volumes: dict[str, Path]) -> list[str]:
    """`docker run` arguments for one container, from its definition and the task's."""
    args = ["--name", name, "--cpus", str(int(task["Cpu"]) / 1024), "--memory",
            f"{task['Memory']}m"]
    if "User" in container:
        args += ["--user", container["User"]]
    if container.get("ReadonlyRootFilesystem"):
        args.append("--read-only")
    for mount in container.get("MountPoints", []):
        mode = "ro" if mount.get("ReadOnly") else "rw"
        args += ["-v", f"{volumes[mount['SourceVolume']]}:{mount['ContainerPath']}:{mode}"]
    args += [f"--env={key}={value}" for key, value in environment(container).items()]
    for capability in container.get("LinuxParameters", {}).get("Capabilities", {}).get("Drop", []):
        args += ["--cap-drop", capability]
    for port in container.get("PortMappings", []):
        args += ["-p", f"127.0.0.1::{port['ContainerPort']}"]
    if "HealthCheck" in container:
        check = container["HealthCheck"]
        args += ["--health-cmd", shlex.join(health_command(container)),
                 "--health-interval", f"{check['Interval']}s",
                 "--health-timeout", f"{check['Timeout']}s",
                 "--health-retries", str(check["Retries"]),
                 "--health-start-period", f"{check['StartPeriod']}s"]
    if "StopTimeout" in container:
        args += ["--stop-timeout", str(container["StopTimeout"])]
    entry = container.get("EntryPoint", [])
    if entry:
        args += ["--entrypoint", entry[0]]
    return args + [image, *entry[1:], *container.get("Command", [])]


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run docker; raise with its output if it fails."""
    run = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if run.returncode != 0:
        raise RuntimeError(f"docker {args[0]} failed ({run.returncode}): {run.stderr[-2000:]}")
    return run


@contextlib.contextmanager
def run_task(image: str, template: dict | None = None, prefix: str = "fargate-local"):
    """Start the task's containers in ECS's order; yield (app container name, its port URL)."""
    template = template or load_template()
    task, defs = task_definition(template), containers(template)
    workdir = Path(tempfile.mkdtemp(prefix=prefix + "-"))
    volumes = {}
    for volume in task.get("Volumes", []):
        path = volumes[volume["Name"]] = workdir / volume["Name"]
        path.mkdir(mode=0o755)
        path.chmod(0o755)
        os.chown(path, 0, 0)  # as Fargate makes it: root's, 0755 (needs root, as docker does)
    started = []
    try:
        app = app_container(template)
        for definition in defs.values():
            name = f"{prefix}-{definition['Name']}-{os.getpid()}"
            if definition is app:
                continue
            started.append(name)  # removed in the end, even if it never ran
            docker("run", *docker_args(definition, task, image, name, volumes), timeout=300)
            status = docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip()
            assert status == "0", f"{definition['Name']} exited {status}"
            assert {"ContainerName": definition["Name"], "Condition": "SUCCESS"} in app.get(
                "DependsOn", []), f"{definition['Name']} ran, but the app does not wait for it"
        name = f"{prefix}-{app['Name']}-{os.getpid()}"
        docker("run", "-d", *docker_args(app, task, image, name, volumes))
        started.append(name)
        port = app["PortMappings"][0]["ContainerPort"]
        host_port = docker("port", name, f"{port}/tcp").stdout.split(":")[-1].strip()
        yield name, f"http://127.0.0.1:{host_port}"
    finally:
        for name in started:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)


def wait_healthy(name: str, seconds: float = 120) -> None:
    """Until Docker runs the template's health check successfully; raise if it never does."""
    deadline = time.monotonic() + seconds
    while docker("inspect", "-f", "{{.State.Health.Status}}", name).stdout.strip() != "healthy":
        running = docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip()
        if running != "true" or time.monotonic() > deadline:
            logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
            raise RuntimeError(f"{name} never became healthy:\n{logs.stderr[-2000:]}")
        time.sleep(0.5)


def memory_mib(name: str) -> float:
    """The container's memory as `docker stats` reports it (page cache excluded)."""
    usage = docker("stats", "--no-stream", "--format", "{{.MemUsage}}", name).stdout
    used = usage.split("/")[0].strip()
    number, unit = float(used.rstrip("KMGiB")), used.lstrip("0123456789.")
    return number * {"B": 1 / 1024 ** 2, "KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[unit]


def measure(image: str, seconds: float, clients: int) -> None:
    """Print start-up and under-load memory peaks of the task as the template defines it."""
    from devtools.records import valid_records

    body = json.dumps(valid_records(10_000)).encode()
    samples: list[tuple[str, float]] = []
    phase, done = ["start-up"], threading.Event()
    with run_task(image) as (name, url):
        def sample():
            while not done.is_set():
                with contextlib.suppress(RuntimeError, ValueError):
                    samples.append((phase[0], memory_mib(name)))
                time.sleep(0.5)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            wait_healthy(name)
            phase[0], stop, batches = "batches", time.monotonic() + seconds, [0]

            def client():
                while time.monotonic() < stop:
                    request = urllib.request.Request(url + "/api/v1/predict", data=body,
                                                     headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(request, timeout=60) as answer:
                        assert answer.status == 200 and answer.read()
                    batches[0] += 1

            threads = [threading.Thread(target=client) for _ in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            done.set()
            sampler.join()
    for label in ("start-up", "batches"):
        values = [mib for kind, mib in samples if kind == label]
        if not values:
            print(f"{label}: no sample (over before `docker stats` answered)")
            continue
        middle = sorted(values)[len(values) // 2]
        print(f"{label}: peak {max(values):.0f} MiB, median {middle:.0f} MiB "
              f"({len(values)} samples)")
    print(f"{batches[0]} full batches ({len(body) / 1024:.0f} KiB each) from {clients} clients "
          f"in {seconds:.0f} s")


def main() -> None:
    """Measure the task's memory (see the module's docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=4)
    options = parser.parse_args()
    measure(options.image, options.seconds, options.clients)


if __name__ == "__main__":
    main()
