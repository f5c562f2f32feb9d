"""The Elastic Beanstalk files a release reads: Dockerrun's port and the environment properties.

The container checks start the image as EB would (Dockerrun's container port, the
``aws:elasticbeanstalk:application:environment`` properties of ``.ebextensions``), and the
bundle copies Dockerrun's ports and logging directory. The service's runtime has no YAML
library, and these files keep to ``KEY: value`` lines in that namespace, which is all this
reads (tests/test_release.py checks it gives what PyYAML gives).
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import ReleaseError

DOCKERRUN = "Dockerrun.aws.json"
EXTENSIONS = ".ebextensions"
ENVIRONMENT = "aws:elasticbeanstalk:application:environment"


def dockerrun(root: Path) -> dict:
    """Dockerrun.aws.json, checked for the container port the checks and the bundle use."""
    path = root / DOCKERRUN
    try:
        run = json.loads(path.read_text())
        int(run["Ports"][0]["ContainerPort"])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise ReleaseError(
            f"{path} gives no container port ({type(exc).__name__}: {exc}); "
            'restore it from git (it needs "Ports": [{"ContainerPort": ...}])'
        ) from None
    return run


def container_port(root: Path) -> int:
    """The port Dockerrun maps, which EB's nginx proxies to."""
    return int(dockerrun(root)["Ports"][0]["ContainerPort"])


def environment_properties(root: Path) -> dict[str, str]:
    """The environment properties of every .ebextensions file, later files winning as in EB."""
    found: dict[str, str] = {}
    for path in sorted((root / EXTENSIONS).glob("*.config")):
        found.update(_properties_in(path))
    return found


def _properties_in(path: Path) -> dict[str, str]:
    properties: dict[str, str] = {}
    block_indent = None  # the indentation of the namespace's line while inside its block
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.split(" #")[0].rstrip()
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        indent = len(text) - len(text.lstrip())
        if block_indent is not None and indent <= block_indent:
            block_indent = None
        if text.strip() == ENVIRONMENT + ":":
            block_indent = indent
        elif block_indent is not None:
            key, colon, value = text.strip().partition(":")
            if not colon or not key:
                raise ReleaseError(
                    f"{path}:{number}: expected KEY: value under {ENVIRONMENT}; "
                    "write each environment property on one line"
                )
            properties[key] = _unquoted(value.strip())
    return properties


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value
