#!/usr/bin/env python3
"""Type-check the installed package layout with mypy: ``python scripts/typecheck.py``.

The package maps ``gaaf_kernels.reference``, ``.adapters`` and ``.experiments`` to the
repository's top-level folders (pyproject.toml's package-dir), which mypy cannot follow
from the source tree; so this builds that layout from symbolic links in a temporary folder
and checks ``-p gaaf_kernels`` there (settings: pyproject.toml's [tool.mypy]). Exit status
is mypy's.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPED = ("reference", "adapters", "experiments")  # gaaf_kernels.<name> -> <name>/


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="gaaf_typecheck_") as tmp:
        package = Path(tmp) / "gaaf_kernels"
        package.mkdir()
        for entry in (ROOT / "gaaf_kernels").iterdir():
            if entry.name != "__pycache__":
                (package / entry.name).symlink_to(entry)
        for name in MAPPED:
            (package / name).symlink_to(ROOT / name)
        return subprocess.call([sys.executable, "-m", "mypy", "--config-file",
                                str(ROOT / "pyproject.toml"), "-p", "gaaf_kernels"], cwd=tmp)


if __name__ == "__main__":
    sys.exit(main())
