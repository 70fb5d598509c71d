"""Generated clients (issue 18): the committed docs/openapi.json as integrators use it.

openapi-python-client and openapi-typescript generate a client from the document, once a session, into
tmp_path_factory, with no warning; ``mypy --strict`` checks tests/clients/flow.py against the Python client and
``tsc --strict`` tests/clients/flow.ts against the TypeScript types; the Python flow then runs against a local
stack of its own (the README's flow, a 401, a 415 and a 422 each parsed into its model). The tools live outside
the project's environment (their pins would fight it): ``make clients`` installs ``.venv-clients`` from
tests/clients/requirements.txt and the npm packages of tests/clients/package-lock.json. Without them the tier
says it skipped and why; in CI it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

from local.openapi import OPENAPI_PATH
from tests.conftest_tiers import in_ci
from tests.e2e.conftest import ROOT, running_stack
from tests.support.build_cache import built_once

pytestmark = pytest.mark.e2e

CLIENTS = ROOT / "tests" / "clients"
CLIENTS_BIN = ROOT / ".venv-clients" / "bin"
NODE_BIN = CLIENTS / "node_modules" / ".bin"
PACKAGE = "mci_client"
TOOL_SECONDS = 120


def _unavailable(why: str) -> NoReturn:
    message = f"Generated clients tier skipped: {why}"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def _run(command: list[str], cwd: Path, **environment: str) -> str:
    """Run a tool; its output (stdout and stderr) when it succeeds, a failure naming it otherwise."""
    done = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=TOOL_SECONDS,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(command)} exited with {done.returncode}:\n{output}"
    return output


@pytest.fixture(scope="session")
def clients_bin() -> Path:
    if not (CLIENTS_BIN / "openapi-python-client").exists():
        _unavailable(".venv-clients missing (`make clients` creates it)")
    return CLIENTS_BIN


@pytest.fixture(scope="session")
def python_client(clients_bin: Path) -> Path:
    """The folder holding the generated package ``mci_client``, generated once for every xdist worker."""
    command = ["openapi-python-client", "generate", "--path", str(OPENAPI_PATH), "--meta", "none"]

    def generate(folder: Path) -> None:
        output = _run(
            [str(clients_bin / command[0]), *command[1:], "--output-path", str(folder / PACKAGE)],
            folder,
            PATH=f"{clients_bin}{os.pathsep}{os.environ.get('PATH', '')}",  # its ruff post-hooks
        )
        assert output.strip() == f"Generating {folder / PACKAGE}", f"openapi-python-client said more:\n{output}"

    return built_once("python-client", [OPENAPI_PATH, CLIENTS / "requirements.txt", " ".join(command)], generate)


@pytest.fixture(scope="session")
def typescript_types(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the generated ``api.d.ts`` (generated once for every xdist worker) and flow.ts beside it."""
    node = shutil.which("node")
    if node is None:
        _unavailable("node not found (`apt-get install nodejs npm`, then `make clients`)")
    if not (NODE_BIN / "openapi-typescript").exists() or not (NODE_BIN / "tsc").exists():
        _unavailable("tests/clients/node_modules missing (`make clients` installs it with npm ci)")

    def generate(folder: Path) -> None:
        output = _run([str(NODE_BIN / "openapi-typescript"), str(OPENAPI_PATH), "-o", str(folder / "api.d.ts")], folder)
        assert "warn" not in output.lower(), f"openapi-typescript warned:\n{output}"
        assert "error" not in output.lower(), f"openapi-typescript reported an error:\n{output}"

    generated = built_once("typescript-types", [OPENAPI_PATH, CLIENTS / "package-lock.json"], generate)
    folder = tmp_path_factory.mktemp("typescript")
    shutil.copy(generated / "api.d.ts", folder / "api.d.ts")
    shutil.copy(CLIENTS / "flow.ts", folder / "flow.ts")
    return folder


def test_the_document_passes_openapi_spec_validator(clients_bin: Path) -> None:
    output = _run([str(clients_bin / "openapi-spec-validator"), str(OPENAPI_PATH)], ROOT)
    assert output.strip().endswith("OK"), output


def test_the_python_client_models_every_answer(python_client: Path) -> None:
    """Every model kept (none dropped for a duplicate title) and GET /engagements' 200 modelled (item 1)."""
    package = python_client / PACKAGE
    listing = (package / "api" / "partner" / "list_engagements.py").read_text(encoding="utf-8")
    assert "EngagementsResponse.from_dict(response.json())" in listing
    models = (package / "models" / "__init__.py").read_text(encoding="utf-8")
    for model in ("Engagement", "EngagementInput", "PageItemViewKind", "Action", "ProblemCode", "GatewayMessage"):
        assert f'"{model}",' in models, model
    engagement = (package / "models" / "engagement.py").read_text(encoding="utf-8")
    assert "hourly_rate_usd: float" in (package / "models" / "payment_rules.py").read_text(encoding="utf-8")
    assert "Unset" not in engagement.split("def to_dict")[0], "a response model with optional fields"


def test_the_python_flow_type_checks_under_mypy_strict(python_client: Path, clients_bin: Path, tmp_path: Path) -> None:
    _run(
        [
            str(clients_bin / "mypy"),
            "--config-file",
            str(CLIENTS / "mypy.ini"),
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            str(CLIENTS / "flow.py"),
        ],
        python_client,
        MYPYPATH=str(python_client),
    )


def test_the_typescript_flow_type_checks_under_tsc_strict(typescript_types: Path) -> None:
    options = ["--strict", "--noEmit", "--target", "es2022", "--module", "es2022"]
    options += ["--moduleResolution", "bundler", "--lib", "es2022,dom"]
    _run([str(NODE_BIN / "tsc"), *options, "flow.ts"], typescript_types)


def test_the_python_flow_runs_against_the_local_stack(python_client: Path, clients_bin: Path) -> None:
    """Its own stack: the flow adds and claims customers the tier's shared stack must not see."""
    with running_stack() as stack:
        flow = [str(clients_bin / "python"), str(CLIENTS / "flow.py"), stack.url]
        output = _run(flow, python_client, PYTHONPATH=str(python_client))
    assert "the README's flow passed through the generated client" in output
