"""The machine a measurement was taken on, recorded beside its figures."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path


def machine() -> dict:
    """Where the figures come from: CPU model, cores, Python, OS, load when starting."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    os_name = platform.system()
    release = Path("/etc/os-release")
    if release.is_file():
        found = re.search(r'^PRETTY_NAME="?([^"\n]*)', release.read_text(), re.M)
        os_name = found.group(1) if found else os_name
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "os": os_name,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
