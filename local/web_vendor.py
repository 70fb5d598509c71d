"""The web app's npm modules as the browser loads them: ``web/vendor/`` from ``web/node_modules/``.

The app is native ES modules with no bundler (docs/web.md). oidc-client-ts's ESM build imports the bare
specifier ``jwt-decode``, which a browser resolves only through an import map, and an inline import map is
refused by the CSP (``script-src 'self'``). So each module is copied with its bare imports rewritten to the
vendored file beside it (``"./jwt-decode.js"``), its source map comment dropped (the map is not shipped),
under a header naming the package, version and lockfile integrity.

``make web-vendor`` (``npm ci`` in web/, then ``python -m local.web_vendor``) writes the files; they are
committed. tests/unit/test_web_vendor.py checks them against ``web/package-lock.json`` (and against
``node_modules`` when it is installed). ``local/webapp.py`` never serves ``node_modules/`` or ``package*.json``.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WEB = Path(__file__).resolve().parent.parent / "web"
LOCKFILE = WEB / "package-lock.json"
NODE_MODULES = WEB / "node_modules"
VENDOR = WEB / "vendor"
HEADER = "/*! {name} {version} ({license}), {integrity}: vendored by `make web-vendor` from web/package-lock.json */\n"
HEADER_PATTERN = re.compile(r"/\*! (?P<name>\S+) (?P<version>\S+) \((?P<license>[^)]*)\), (?P<integrity>\S+): ")
# A static import or re-export at the start of a line, whose specifier is bare (not "./", "../" or "/").
IMPORT = re.compile(r"""^((?:import|export)\s[^;'"]*?\bfrom\s*|import\s*)(["'])([^"'./][^"']*)\2""", re.MULTILINE)
SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$\n?", re.MULTILINE)


@dataclass(frozen=True)
class VendoredModule:
    package: str
    entry: str  # the ESM entry inside the package
    file: str  # its name in web/vendor/


MODULES = (
    VendoredModule("oidc-client-ts", "dist/esm/oidc-client-ts.js", "oidc-client-ts.js"),
    VendoredModule("jwt-decode", "build/esm/index.js", "jwt-decode.js"),
)
FILE_OF = {module.package: module.file for module in MODULES}


class VendorError(Exception):
    """The vendored files cannot be made or do not match the lockfile."""


def locked(package: str, lockfile: Path = LOCKFILE) -> dict[str, Any]:
    """The lockfile's entry of ``package`` (version, integrity, license)."""
    packages = json.loads(lockfile.read_text(encoding="utf-8"))["packages"]
    entry = packages.get(f"node_modules/{package}")
    if not isinstance(entry, dict):
        raise VendorError(f"{package} is not in {lockfile.name}")
    return entry


def vendored_text(module: VendoredModule, source: str, entry: dict[str, Any]) -> str:
    """The browser's copy of a module: the header, bare imports made relative, no source map comment."""

    def relative(match: re.Match[str]) -> str:
        specifier = match.group(3)
        if specifier not in FILE_OF:
            raise VendorError(f"{module.package} imports {specifier!r}, which is not vendored")
        return f"{match.group(1)}{match.group(2)}./{FILE_OF[specifier]}{match.group(2)}"

    body = SOURCE_MAP.sub("", IMPORT.sub(relative, source))
    header = HEADER.format(
        name=module.package, version=entry["version"], license=entry.get("license", ""), integrity=entry["integrity"]
    )
    return header + body


def bare_imports(text: str) -> list[str]:
    """The specifiers of ``text`` a browser could not resolve without an import map."""
    return [match.group(3) for match in IMPORT.finditer(text)]


def build(node_modules: Path = NODE_MODULES, lockfile: Path = LOCKFILE) -> dict[str, str]:
    """file name -> content of every vendored module, from the installed packages."""
    files = {}
    for module in MODULES:
        entry = locked(module.package, lockfile)
        installed = json.loads((node_modules / module.package / "package.json").read_text(encoding="utf-8"))
        if installed["version"] != entry["version"]:
            raise VendorError(f"{module.package} {installed['version']} is installed, {entry['version']} is locked")
        source = (node_modules / module.package / module.entry).read_text(encoding="utf-8")
        files[module.file] = vendored_text(module, source, entry)
    return files


def main() -> int:
    try:
        files = build()
    except (OSError, VendorError) as error:
        print(f"web vendor: {error} (run `npm ci --ignore-scripts` in web/ first: `make web-vendor`)", file=sys.stderr)
        return 1
    VENDOR.mkdir(exist_ok=True)
    for name, text in files.items():
        (VENDOR / name).write_text(text, encoding="utf-8")
        print(f"web/vendor/{name}: {len(text.encode())} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
