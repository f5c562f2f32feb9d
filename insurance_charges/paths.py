"""Where the project's own files are: fixed by the package's place on disk, never by settings."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The committed model (`make run` serves it; `make train` writes it).
DEFAULT_MODEL_PATH = PROJECT_ROOT / "model" / "insurance-charges.pkl"
