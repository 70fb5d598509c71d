"""Issue 14: the web app's vendored npm modules (web/vendor/) are the versions web/package-lock.json pins,
loadable by a browser without an import map (no bare specifier), and what `make web-vendor` makes."""

from __future__ import annotations

import json

import pytest

from local.web_vendor import (
    HEADER_PATTERN,
    LOCKFILE,
    MODULES,
    NODE_MODULES,
    VENDOR,
    VendoredModule,
    bare_imports,
    locked,
    vendored_text,
)

WEB = LOCKFILE.parent


def test_package_json_pins_exact_versions_that_the_lockfile_holds() -> None:
    manifest = json.loads((WEB / "package.json").read_text(encoding="utf-8"))
    for package, version in manifest["dependencies"].items():
        assert version[0].isdigit(), f"{package} {version}: pin an exact version"
        assert locked(package)["version"] == version


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.package)
def test_vendored_module_matches_the_lockfile(module: VendoredModule) -> None:
    text = (VENDOR / module.file).read_text(encoding="utf-8")
    header = HEADER_PATTERN.match(text)
    assert header is not None, f"web/vendor/{module.file} has no vendor header: run make web-vendor"
    entry = locked(module.package)
    assert (header["name"], header["version"], header["integrity"]) == (
        module.package,
        entry["version"],
        entry["integrity"],
    ), f"web/vendor/{module.file} is not the locked version: run make web-vendor"
    assert bare_imports(text) == []
    assert "sourceMappingURL" not in text


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.package)
def test_vendored_module_is_the_installed_package_rewritten(module: VendoredModule) -> None:
    installed = NODE_MODULES / module.package
    if not installed.is_dir():
        pytest.skip("web/node_modules is not installed (make web-vendor installs it)")
    entry = locked(module.package)
    if json.loads((installed / "package.json").read_text(encoding="utf-8"))["version"] != entry["version"]:
        pytest.skip(f"the installed {module.package} is not the locked version (npm ci in web/)")
    source = (installed / module.entry).read_text(encoding="utf-8")
    assert (VENDOR / module.file).read_text(encoding="utf-8") == vendored_text(module, source, entry)


def test_bare_imports_are_rewritten_to_the_vendored_file_beside() -> None:
    module = MODULES[0]
    source = 'import { jwtDecode } from "jwt-decode";\nconst s = "x from \\"y\\"";\n//# sourceMappingURL=a.js.map\n'
    text = vendored_text(module, source, {"version": "1.0.0", "integrity": "sha512-x", "license": "MIT"})
    assert 'import { jwtDecode } from "./jwt-decode.js";' in text
    assert bare_imports(text) == []
    assert "sourceMappingURL" not in text
