"""`make release`: the image built once from the commit, checked, pushed to a real registry and
pulled back by digest; the record and the Elastic Beanstalk bundle that pulls it; Amazon ECR
through moto's server; and every way a release can fail, each in one line."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
import yaml

from devtools.gunicorn_server import free_port
from insurance_charges.release import checks, docker_cli, eb_files, ecr
from insurance_charges.release.cli import main
from insurance_charges.release.errors import ReleaseError

from .aws import moto_server as aws_server
from .conftest import ROOT, require
from .containers import docker, engine_running
from .deploy_files import EBCLI_PYTHON, EBCLI_VENV, copy_project, dockerrun, settings

pytestmark = pytest.mark.slow
REPOSITORY = "insurance-charges"
REGION = "eu-west-1"
CARD = "model/insurance-charges.card.json"
MODEL_VERSION = json.loads((ROOT / CARD).read_text())["model_version"]
ENVIRONMENT = settings()["aws:elasticbeanstalk:application:environment"]
PORT = dockerrun()["Ports"][0]["ContainerPort"]
# "Your source bundle ... can't exceed 512 MB" (aws-targets.md 1b, applications-sourcebundle).
SOURCE_BUNDLE_LIMIT = 512 * 1024 * 1024
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def git(project: Path, *args: str) -> str:
    """Run git in ``project``."""
    return subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def committed(project: Path) -> Path:
    """``project`` as the only commit of a fresh repository: a clean tree."""
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "release test")
    return project


def checkout(tmp_path_factory, name: str) -> Path:
    """A committed copy of this checkout, to release from."""
    return committed(copy_project(tmp_path_factory.mktemp(name) / "project"))


def card_only_repository(path: Path) -> Path:
    """A repository holding just the model card: enough for the checks before any build."""
    (path / "model").mkdir(parents=True)
    shutil.copy(ROOT / CARD, path / CARD)
    return committed(path)


def released_tag(project: Path) -> str:
    """The tag a release of ``project`` gets: model version and short commit."""
    return f"{MODEL_VERSION}-{git(project, 'rev-parse', 'HEAD').strip()[:7]}"


def release(project: Path, *args: str, env: dict | None = None):
    """`python -m insurance_charges.release ARGS` run from the checkout at ``project``."""
    return subprocess.run(
        [sys.executable, "-m", "insurance_charges.release", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=1800,
        env=env,
    )


def the_error(run) -> str:
    """The one Error line a failed release printed last (progress lines may come before)."""
    assert run.returncode == 2 and run.stdout == "", run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("Error:")] == lines[-1:], run.stderr
    return lines[-1]


def aws_env(extra: dict) -> dict:
    """This process's environment without AWS settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, **extra}


def get(url: str, headers: dict | None = None):
    """Status, headers and body of a GET."""
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers or {}), timeout=30
        ) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        with err:  # closed even when reading its body fails
            return err.code, err.headers, err.read()


# ---- a real registry (Debian's docker-registry) and a release pushed to it ---------------


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """Debian's docker-registry on 127.0.0.1 with its own config; yields host:port."""
    require(engine_running(), "needs a running Docker engine (.ci/run installs docker.io)")
    require(
        shutil.which("docker-registry") is not None,
        "needs Debian's docker-registry (apt-get install docker-registry)",
    )
    home = tmp_path_factory.mktemp("registry")
    address = f"127.0.0.1:{free_port()}"
    (home / "config.yml").write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {home / 'data'}}}}}\n"
        f"http: {{addr: {address}}}\n"
    )
    with open(home / "log", "w") as log:  # the server keeps its own copy of the descriptor
        server = subprocess.Popen(
            ["docker-registry", "serve", str(home / "config.yml")],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if get(f"http://{address}/v2/")[0] == 200:
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (
                    home / "log"
                ).read_text()
                time.sleep(0.2)
        yield address
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def released(registry, tmp_path_factory):
    """`make release REGISTRY=127.0.0.1:PORT/insurance-charges` from a committed checkout."""
    project = checkout(tmp_path_factory, "released")
    venv = Path(sys.prefix)  # the environment running these tests; never reinstalled here
    run = subprocess.run(
        [
            "make",
            "--silent",
            "release",
            f"VENV={venv}",
            f"REGISTRY={registry}/{REPOSITORY}",
            "-o",
            f"{venv}/.runtime",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    record = json.loads((project / "dist" / "release.json").read_text())
    yield project, record, run
    subprocess.run(
        ["docker", "rmi", "--force", record["image"], f"{record['repository']}:{record['tag']}"],
        capture_output=True,
        timeout=120,
    )


def test_release_records_the_image_by_digest_with_its_tag_model_version_and_commit(
    released, registry
):
    project, record, run = released
    sha = git(project, "rev-parse", "HEAD").strip()
    assert record["git_sha"] == sha and record["model_version"] == MODEL_VERSION
    assert record["tag"] == f"{MODEL_VERSION}-{sha[:7]}" == released_tag(project)
    assert record["repository"] == f"{registry}/{REPOSITORY}"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", record["digest"])
    assert record["image"] == f"{registry}/{REPOSITORY}@{record['digest']}"
    assert record["bundle"] == f"eb-{record['tag']}.zip"
    assert record["worker_bundle"] == f"eb-worker-{record['tag']}.zip"
    assert (project / "dist" / record["worker_bundle"]).is_file()  # its contents: test_eb_worker
    assert run.stdout.splitlines()[0] == f"released {record['image']}"


def test_the_registry_serves_that_digest_under_the_tag_with_every_layer(released, registry):
    _, record, _ = released
    base = f"http://{registry}/v2/{REPOSITORY}"
    status, headers, body = get(f"{base}/manifests/{record['tag']}", {"Accept": MANIFEST_V2})
    assert status == 200 and headers["Docker-Content-Digest"] == record["digest"]
    layers = json.loads(body)["layers"]
    assert layers and all(get(f"{base}/blobs/{layer['digest']}")[0] == 200 for layer in layers)


def test_the_pushed_image_is_pulled_back_by_digest_and_serves(released):
    _, record, _ = released
    built = docker("image", "inspect", "--format", "{{.Id}}", record["image"]).stdout.strip()
    docker("rmi", "--force", built)
    gone = subprocess.run(["docker", "image", "inspect", built], capture_output=True)
    assert gone.returncode != 0, "the released image is still on this engine"
    docker("pull", record["image"], timeout=600)
    assert (
        docker("image", "inspect", "--format", "{{.Id}}", record["image"]).stdout.strip() == built
    )
    labels = json.loads(
        docker("image", "inspect", "--format", "{{json .Config.Labels}}", record["image"]).stdout
    )
    assert labels["org.opencontainers.image.revision"] == record["git_sha"]
    name = f"insurance-charges-release-pulled-{os.getpid()}"
    docker(
        "run",
        "--detach",
        "--name",
        name,
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--publish",
        f"127.0.0.1::{PORT}",
        *[f"--env={key}={value}" for key, value in ENVIRONMENT.items()],
        record["image"],
    )
    try:
        url = "http://127.0.0.1:" + docker("port", name, f"{PORT}/tcp").stdout.split(":")[-1]
        deadline = time.monotonic() + 120
        while True:
            try:
                status, _, body = get(url.strip() + "/health")
                break
            except OSError:
                assert time.monotonic() < deadline, docker("logs", name).stderr
                time.sleep(0.5)
        assert status == 200 and json.loads(body)["status"] == "ok"
    finally:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, timeout=60)


def test_the_bundle_pulls_that_image_and_holds_no_dockerfile(released):
    project, record, _ = released
    bundle = zipfile.ZipFile(project / "dist" / record["bundle"])
    expected = {
        p.relative_to(project).as_posix()
        for name in (".ebextensions", ".platform")
        for p in (project / name).rglob("*")
        if p.is_file()
    }
    assert expected and set(bundle.namelist()) == expected | {"Dockerrun.aws.json"}
    assert "Dockerfile" not in bundle.namelist()  # with none, EB pulls instead of building
    for name in expected:
        assert bundle.read(name) == (project / name).read_bytes(), name
    run = json.loads(bundle.read("Dockerrun.aws.json"))
    assert run == {
        "AWSEBDockerrunVersion": "1",
        "Image": {"Name": record["image"], "Update": "true"},
        "Ports": dockerrun()["Ports"],
        "Logging": dockerrun()["Logging"],
    }


def test_the_bundle_is_one_eb_accepts_at_its_root_and_within_its_size_limit(released):
    project, record, _ = released
    path = project / "dist" / record["bundle"]
    with zipfile.ZipFile(path) as bundle:
        assert bundle.testzip() is None
        names = bundle.namelist()
    assert all(not n.startswith(("/", "../")) and ".." not in n.split("/") for n in names)
    assert "Dockerrun.aws.json" in names  # at the root: no parent folder
    assert path.stat().st_size < SOURCE_BUNDLE_LIMIT


def test_the_eb_cli_uploads_exactly_that_bundle_when_its_config_names_the_artifact(released):
    require(
        EBCLI_PYTHON.exists(),
        f"needs the EB CLI's virtual environment {EBCLI_VENV} (`make test` creates it)",
    )
    project, record, _ = released
    (project / ".elasticbeanstalk").mkdir(exist_ok=True)
    (project / ".elasticbeanstalk" / "config.yml").write_text(
        f"global:\n  application_name: insurance-charges\n  default_region: {REGION}\n"
        "  default_platform: Docker running on 64bit Amazon Linux 2023\n"
        f"deploy:\n  artifact: dist/{record['bundle']}\n"
    )
    # `eb deploy --label TAG` reaches create_app_version; everything up to the S3 upload runs
    # as is, and the upload (AWS) is where this stops and reports what it would send.
    script = (
        "import json, sys\n"
        "from ebcli.operations import commonops\n"
        "sent = {}\n"
        "def upload(app, bucket, key, file_name, file_path, label, *rest, **kw):\n"
        "    sent.update(file_name=file_name, file_path=file_path, label=label)\n"
        "commonops.handle_upload_target = upload\n"
        "commonops.create_app_version('insurance-charges', label=sys.argv[1])\n"
        "print(json.dumps(sent))\n"
    )
    run = subprocess.run(
        [str(EBCLI_PYTHON), "-c", script, record["tag"]],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    sent = json.loads(run.stdout.splitlines()[-1])
    assert sent == {
        "file_name": f"{record['tag']}.zip",
        "file_path": f"dist/{record['bundle']}",
        "label": record["tag"],
    }


# ---- the container checks, against the image the session builds --------------------------


def derived(image: str, lines: str) -> str:
    """A throwaway image: the session's image with a few more Dockerfile lines."""
    tag = f"insurance-charges:release-check-{os.getpid()}-{abs(hash(lines)) % 10**8}"
    docker("build", "-t", tag, "-", input=f"FROM {image}\n{lines}\n", timeout=300)
    return tag


def test_the_checks_pass_on_the_image_the_tests_build(image):
    checks.check_image(image, ROOT)


@pytest.mark.parametrize(
    "lines, complaint",
    [
        ("USER 0", "as root"),
        ("ENV MODEL_PATH=/nonexistent/model.pkl", "stopped before answering /health: Error: "),
    ],
    ids=["runs-as-root", "cannot-load-its-model"],
)
def test_the_checks_refuse_an_image_that_would_not_serve_as_released(image, lines, complaint):
    tag = derived(image, lines)
    try:
        with pytest.raises(ReleaseError, match=re.escape(complaint)):
            checks.check_image(tag, ROOT)
    finally:
        subprocess.run(["docker", "rmi", "--force", tag], capture_output=True, timeout=60)


def test_the_checks_refuse_an_image_whose_estimate_is_not_this_checkouts(image, monkeypatch):
    answer = checks.in_process_answer()
    monkeypatch.setattr(
        checks, "in_process_answer", lambda: {**answer, "prediction": answer["prediction"] + 0.01}
    )
    with pytest.raises(ReleaseError, match="the image is not this commit's"):
        checks.check_image(image, ROOT)


def test_the_checks_start_the_image_with_the_environment_pyyaml_reads_from_ebextensions():
    assert eb_files.environment_properties(ROOT) == ENVIRONMENT


@pytest.mark.parametrize(
    "text",
    [
        "option_settings:\n  aws:elasticbeanstalk:application:environment:\n"
        "    # a comment\n    A: '1'\n    B: two   # inline\n    C: \"3\"\n"
        "  aws:autoscaling:asg:\n    MinSize: '2'\n",
        "option_settings:\n  aws:autoscaling:asg:\n    MaxSize: '6'\n\n"
        "  aws:elasticbeanstalk:application:environment:\n    LOG_LEVEL: info\n",
        "option_settings:\n  aws:autoscaling:asg:\n    MaxSize: '6'\n",
    ],
)
def test_the_environment_reader_agrees_with_pyyaml(tmp_path, text):
    (tmp_path / ".ebextensions").mkdir()
    (tmp_path / ".ebextensions" / "01.config").write_text(text)
    expected = yaml.safe_load(text)["option_settings"].get(eb_files.ENVIRONMENT, {})
    assert eb_files.environment_properties(tmp_path) == expected


# ---- registry logins: the password only ever on standard input ---------------------------


@pytest.fixture
def docker_spy(tmp_path):
    """A `docker` first on PATH that logs its arguments and a login's input, then runs the
    real one."""
    real = shutil.which("docker")
    require(real is not None, "needs the docker command (.ci/run installs docker.io)")
    spy = tmp_path / "spy"
    spy.mkdir()
    (spy / "docker").write_text(
        "#!/bin/sh\n"
        f"printf '%s\\n' \"$*\" >> {spy / 'argv.log'}\n"
        f'case " $* " in *" login "*)\n'
        f'  tee -a {spy / "stdin.log"} | {real} "$@"; exit $? ;;\nesac\n'
        f'exec {real} "$@"\n'
    )
    (spy / "docker").chmod(0o755)
    return spy


def test_docker_login_reads_the_password_from_stdin_into_a_private_config(
    registry, tmp_path, docker_spy, monkeypatch
):
    monkeypatch.setenv("PATH", f"{docker_spy}{os.pathsep}{os.environ['PATH']}")
    config = tmp_path / "docker-config"
    config.mkdir()
    docker_cli.login(registry, "AWS", "a-registry-password", config)
    auth = json.loads((config / "config.json").read_text())["auths"][registry]["auth"]
    assert base64.b64decode(auth) == b"AWS:a-registry-password"
    assert (docker_spy / "stdin.log").read_text() == "a-registry-password"
    argv = (docker_spy / "argv.log").read_text()
    assert "--password-stdin" in argv and "a-registry-password" not in argv


# ---- Amazon ECR, against moto's server -----------------------------------------------------


@pytest.fixture(scope="module")
def moto_server():
    """moto's server on 127.0.0.1 (STS, ECR); boto3 reaches it through AWS_ENDPOINT_URL."""
    with aws_server() as env:
        env.pop("AWS_DEFAULT_REGION")  # the release names its region itself
        yield env


@pytest.fixture
def aws(moto_server, monkeypatch):
    """This process pointed at moto's server, with no other AWS settings."""
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in moto_server.items():
        monkeypatch.setenv(key, value)
    import boto3

    session = boto3.session.Session(region_name=REGION)
    return session.client("ecr"), session.client("sts").get_caller_identity()["Account"]


def test_ecr_repository_is_created_with_immutable_tags_and_scan_on_push(aws):
    client, account = aws
    registry = ecr.prepare("insurance-charges-new", REGION)
    found = client.describe_repositories(repositoryNames=["insurance-charges-new"])
    settings_ = found["repositories"][0]
    assert settings_["imageTagMutability"] == "IMMUTABLE"
    assert settings_["imageScanningConfiguration"] == {"scanOnPush": True}
    assert registry.host == f"{account}.dkr.ecr.{REGION}.amazonaws.com"
    assert registry.repository == f"{registry.host}/insurance-charges-new"
    token = client.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    assert f"{registry.username}:{registry.password}" == base64.b64decode(token).decode()
    assert registry.username == "AWS" and registry.password not in repr(registry)
    assert registry.notes == (
        "created ECR repository insurance-charges-new (tags immutable, scan on push)",
    )


def test_an_existing_repository_is_used_as_it_is_and_loose_settings_are_said(aws):
    client, _ = aws
    client.create_repository(repositoryName="insurance-charges-old")
    registry = ecr.prepare("insurance-charges-old", REGION)
    assert any("lets tags be overwritten" in note for note in registry.notes)
    assert any("does not scan images on push" in note for note in registry.notes)
    repositories = client.describe_repositories()["repositories"]
    assert [
        r["imageTagMutability"]
        for r in repositories
        if r["repositoryName"] == "insurance-charges-old"
    ] == ["MUTABLE"]


def test_an_ecr_release_logs_in_with_the_token_on_stdin_and_leaves_it_nowhere(
    aws, moto_server, docker_spy, tmp_path
):
    require(engine_running(), "needs a running Docker engine (.ci/run installs docker.io)")
    client, account = aws
    project = card_only_repository(tmp_path / "project")
    shutil.copytree(
        ROOT / "insurance_charges",
        project / "insurance_charges",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    committed(project)
    run = release(
        project,
        "--ecr-repository",
        "insurance-charges-login",
        "--region",
        REGION,
        env=aws_env({**moto_server, "PATH": f"{docker_spy}{os.pathsep}{os.environ['PATH']}"}),
    )
    password = f"{account}-auth-token"  # what moto's get_authorization_token hands out
    error = the_error(run)
    assert error.startswith("Error: `docker login` failed: ") and "dkr.ecr" in error
    assert password not in run.stdout + run.stderr
    assert (docker_spy / "stdin.log").read_text() == password
    login = next(
        line
        for line in (docker_spy / "argv.log").read_text().splitlines()
        if " login " in f" {line} "
    )
    assert "--password-stdin" in login and password not in login
    config = Path(login.split("--config ")[1].split()[0])
    assert not config.exists(), "the login's Docker config must be deleted with the token"


def test_a_tag_already_in_ecr_is_recorded_and_bundled_without_building_again(
    aws, moto_server, tmp_path
):
    client, account = aws
    project = committed(copy_project(tmp_path / "project"))
    tag = released_tag(project)
    client.create_repository(repositoryName="insurance-charges-again")
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_V2,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 2,
            "digest": "sha256:" + "0" * 64,
        },
        "layers": [],
    }
    pushed = client.put_image(
        repositoryName="insurance-charges-again", imageTag=tag, imageManifest=json.dumps(manifest)
    )["image"]["imageId"]
    no_docker = tmp_path / "no-docker"
    no_docker.mkdir()
    (no_docker / "docker").write_text('#!/bin/sh\necho "docker $*" >&2\nexit 99\n')
    (no_docker / "docker").chmod(0o755)
    run = release(
        project,
        "--ecr-repository",
        "insurance-charges-again",
        "--region",
        REGION,
        env=aws_env({**moto_server, "PATH": f"{no_docker}{os.pathsep}{os.environ['PATH']}"}),
    )
    assert run.returncode == 0, run.stderr
    assert "released already" in run.stderr and "docker " not in run.stderr
    record = json.loads((project / "dist" / "release.json").read_text())
    repository = f"{account}.dkr.ecr.{REGION}.amazonaws.com/insurance-charges-again"
    assert record["digest"] == pushed["imageDigest"] and record["tag"] == tag
    assert record["image"] == f"{repository}@{pushed['imageDigest']}"
    bundle = zipfile.ZipFile(project / "dist" / record["bundle"])
    assert json.loads(bundle.read("Dockerrun.aws.json"))["Image"]["Name"] == record["image"]


# ---- every other way a release can fail: one line, nothing recorded ----------------------


@pytest.mark.parametrize(
    "change, named",
    [
        (lambda p: (p / "application.py").write_text("changed = True\n"), "application.py"),
        (lambda p: (p / "notes.txt").write_text("untracked\n"), "notes.txt"),
        (lambda p: (p / CARD).unlink(), CARD),
    ],
    ids=["modified", "untracked", "deleted"],
)
def test_a_dirty_tree_is_refused_in_one_line(tmp_path, capsys, change, named):
    project = card_only_repository(tmp_path / "project")
    (project / "application.py").write_text("application = None\n")
    committed(project)
    change(project)
    assert main(["--registry", f"127.0.0.1:{free_port()}/x"], root=project) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("Error: the working tree differs from commit")
    assert named in err and "commit or stash" in err
    assert not (project / "dist").exists()


@pytest.mark.parametrize(
    "card, complaint",
    [
        (None, "holds no model card"),
        ("{not json", "is not JSON"),
        ('{"estimator": "gbr"}', "has no usable model_version (None"),
        ('{"model_version": "2026 11 21"}', "has no usable model_version ('2026 11 21'"),
        ('{"model_version": ".hidden"}', "has no usable model_version ('.hidden'"),
    ],
    ids=["no-card", "not-json", "no-version", "spaces", "leading-dot"],
)
def test_an_unknown_model_version_is_refused_in_one_line(tmp_path, capsys, card, complaint):
    project = card_only_repository(tmp_path / "project")
    if card is None:
        git(project, "rm", "-q", CARD)
    else:
        (project / CARD).write_text(card)
    git(project, "commit", "-q", "-am", "a card the release cannot use")
    assert main(["--registry", f"127.0.0.1:{free_port()}/x"], root=project) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("Error: ") and complaint in err, err
    assert "make train" in err


def test_a_directory_that_is_no_git_checkout_is_refused_in_one_line(tmp_path, capsys):
    assert main(["--registry", f"127.0.0.1:{free_port()}/x"], root=tmp_path) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "release from a clone of the repository" in err


@pytest.mark.parametrize(
    "argv, complaint",
    [
        ([], "one of the arguments --registry --ecr-repository is required"),
        (["--registry", "insurance-charges"], "not host[:port]/repository"),
        (["--registry", "someone/insurance-charges"], "not host[:port]/repository"),
        (["--registry", "127.0.0.1:5000/Insurance"], "not host[:port]/repository"),
        (["--registry", "127.0.0.1:5000/x", "--ecr-repository", "x"], "not allowed with"),
    ],
    ids=["neither", "no-host", "docker-hub-namespace", "upper-case", "both"],
)
def test_where_to_push_must_be_said_exactly_once_and_plainly(tmp_path, capsys, argv, complaint):
    assert main(argv, root=tmp_path) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and complaint in err, err


@pytest.mark.parametrize(
    "region, complaint",
    [
        ("", "AWS_REGION is not set"),
        ("mars-north-1", "AWS_REGION='mars-north-1' is not a region where ECR runs"),
        ("eu_west_1", "AWS_REGION='eu_west_1' is not a region where ECR runs"),
    ],
)
def test_a_bad_region_is_refused_in_one_line_before_anything_is_built(
    aws, tmp_path, capsys, region, complaint
):
    project = card_only_repository(tmp_path / "project")
    argv = ["--ecr-repository", "insurance-charges", "--region", region]
    assert main(argv, root=project) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and complaint in err, err


def test_missing_aws_credentials_are_said_in_one_line(aws, tmp_path, capsys, monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    project = card_only_repository(tmp_path / "project")
    argv = ["--ecr-repository", "insurance-charges", "--region", REGION]
    assert main(argv, root=project) == 2
    err = capsys.readouterr().err
    assert err.endswith(
        ": no AWS credentials for releasing to ECR in eu-west-1: boto3 found none "
        "(environment, AWS_PROFILE, ~/.aws, instance profile); configure them "
        "(`aws configure`, AWS_PROFILE) or run where a role applies\n"
    ), err
    assert err.count("\n") == 1


def test_an_unreachable_registry_fails_the_push_in_one_line_and_records_nothing(tmp_path_factory):
    require(engine_running(), "needs a running Docker engine (.ci/run installs docker.io)")
    project = checkout(tmp_path_factory, "unreachable")
    repository = f"127.0.0.1:{free_port()}/{REPOSITORY}"
    try:
        run = release(project, "--registry", repository)
    finally:  # the built and checked image stays tagged for a retry; not here
        subprocess.run(
            ["docker", "rmi", f"{repository}:{released_tag(project)}"],
            capture_output=True,
            timeout=120,
        )
    error = the_error(run)
    assert error.startswith("Error: `docker push` failed: ") and "connection refused" in error
    assert not (project / "dist" / "release.json").exists()


def test_a_failing_build_is_one_line_naming_the_saved_log(tmp_path_factory):
    require(engine_running(), "needs a running Docker engine (.ci/run installs docker.io)")
    project = checkout(tmp_path_factory, "broken-build")
    (project / "Dockerfile").write_text("FROM python:3.11-slim\nRUN exit 3\n")
    git(project, "commit", "-q", "-am", "a Dockerfile that cannot build")
    run = release(project, "--registry", f"127.0.0.1:{free_port()}/{REPOSITORY}")
    error = the_error(run)
    log = project / "dist" / "docker-build.log"
    assert error.startswith("Error: `docker build` failed: ") and str(log) in error
    assert "RUN exit 3" in log.read_text()
    assert not (project / "dist" / "release.json").exists()
