"""Size: each function's code package and each layer after ``sam build``, zipped as Lambda takes them.

The build goes to ``.aws-sam/bench`` (its own directory, cached between runs), so it never touches a
build someone else is deploying. The smoke run zips the source folders instead (no ``sam build``).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import ROOT, template_functions

TARGET_BYTES = 5 * 1024 * 1024
BUILD_ROOT = ROOT / ".aws-sam" / "bench"
SAM = ROOT / ".venv-sam" / "bin" / "sam"
LAMBDA_PYTHON = "3.13.0"
LAYERS = ("DependenciesLayer", "SharedLayer")


def zipped(folder: Path, *, source: bool = False) -> dict[str, Any]:
    """Bytes of the folder zipped with deflate (what ``sam package`` uploads), and unzipped.

    A source folder is zipped without its local ``__pycache__`` (sam build would not copy it).
    """
    buffer = io.BytesIO()
    files = raw = 0
    py = pyc = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_dir() or (source and "__pycache__" in path.parts):
                continue
            archive.write(path, path.relative_to(folder).as_posix())
            files += 1
            raw += path.stat().st_size
            py += path.suffix == ".py"
            pyc += path.suffix == ".pyc"
    return {"zipped_bytes": buffer.tell(), "unzipped_bytes": raw, "files": files, "py_files": py, "pyc_files": pyc}


def _lambda_python_path() -> str:
    """PATH with the Lambda runtime's Python first, as ``make build`` does (pyenv)."""
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    found = shutil.which("pyenv")
    if found:
        done = subprocess.run([found, "root"], capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode == 0 and done.stdout.strip():
            pyenv_root = done.stdout.strip()
    return f"{pyenv_root}/versions/{LAMBDA_PYTHON}/bin{os.pathsep}{os.environ.get('PATH', '')}"


def build(progress: Callable[[str], None]) -> Path:
    if not SAM.exists():
        progress("  size: installing the SAM CLI (make .venv-sam/bin/sam)")
        make = [shutil.which("make") or "make", "-s", str(SAM.relative_to(ROOT))]
        subprocess.run(make, cwd=ROOT, check=True, timeout=900)  # noqa: S603 - the repository's Makefile
    build_dir = BUILD_ROOT / "build"
    command = [
        str(SAM),
        "build",
        "--template",
        str(ROOT / "template.yaml"),
        "--build-dir",
        str(build_dir),
        "--cache-dir",
        str(BUILD_ROOT / "cache"),
        "--cached",
    ]
    environment = {**os.environ, "PATH": _lambda_python_path(), "SAM_CLI_TELEMETRY": "0"}
    done = subprocess.run(  # noqa: S603 - the SAM CLI of .venv-sam
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"sam build failed: {(done.stderr or done.stdout).strip()[-1500:]}")
    return build_dir


def measure(*, smoke: bool, progress: Callable[[str], None] = print) -> dict[str, Any]:
    from local.cloudformation import load_template

    functions = template_functions(load_template())
    started = time.monotonic()
    if smoke:
        method = "source folders (smoke run: no sam build)"
        function_dirs = {f.logical_id: ROOT / "functions" / f.folder for f in functions}
        layer_dirs: dict[str, Path | None] = {"DependenciesLayer": None, "SharedLayer": ROOT / "shared"}
    else:
        build_dir = build(progress)
        method = "sam build (python3.13, arm64), then zip"
        function_dirs = {f.logical_id: build_dir / f.logical_id for f in functions}
        layer_dirs = {name: build_dir / name for name in LAYERS}
    rows = []
    for logical_id, folder in function_dirs.items():
        found = zipped(folder, source=smoke)
        rows.append({"function": logical_id, **found, "met": found["zipped_bytes"] <= TARGET_BYTES})
    layers = {
        name: (zipped(folder, source=smoke) if folder is not None else None) for name, folder in layer_dirs.items()
    }
    return {
        "what": "each function's own code package, zipped; the layers separately",
        "target": f"each function's package <= {TARGET_BYTES} bytes zipped (dependencies in a layer)",
        "method": method,
        "seconds": round(time.monotonic() - started, 1),
        "functions": rows,
        "largest_function_bytes": max((r["zipped_bytes"] for r in rows), default=0),
        "layers": layers,
        # Proposal 1: /opt is read-only on Lambda, so a layer without bytecode is compiled at every cold start.
        "layers_with_bytecode": sorted(
            name for name, layer in layers.items() if layer is not None and layer["pyc_files"] >= layer["py_files"] > 0
        ),
        "met": all(r["met"] for r in rows),
    }
