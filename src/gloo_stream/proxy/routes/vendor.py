"""The chat page's two browser libraries, marked and DOMPurify: shipped inside the package.

Their browser builds and licence texts sit in ``proxy/static/vendor/`` with the same relative
paths as in an npm ``node_modules`` folder, copied byte for byte from the versions that the
project's ``package-lock.json`` pins (``make vendor`` refreshes them with ``refresh_main``
after ``npm ci``). Nothing is ever loaded from a CDN.
``PROXY_NODE_MODULES`` points the proxy at another ``node_modules`` folder instead.
"""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "LIBRARIES",
    "SHIPPED_DIR",
    "BrowserLibrary",
    "library_version",
    "refresh_main",
    "refresh_shipped",
]

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "static" / "vendor"


@dataclass(frozen=True)
class BrowserLibrary:
    """One library the page loads: its npm package, its browser build, its licence files."""

    served_as: str
    """The file name under ``/vendor/`` (what index.html loads)."""
    package: str
    """The npm package name (a folder of ``node_modules``)."""
    builds: tuple[str, ...]
    """Where the browser build sits inside the package, best first; the first one is shipped
    (the others let ``PROXY_NODE_MODULES`` point at an older release's layout)."""
    licenses: tuple[str, ...]
    """Licence files of the package, shipped beside the build."""
    title: str
    """The library's name as people write it."""

    @property
    def shipped_files(self) -> tuple[str, ...]:
        """Every file this library ships, relative to a ``node_modules`` root."""
        return tuple(f"{self.package}/{name}" for name in (self.builds[0], *self.licenses))

    def find_build(self, root: Path) -> Path | None:
        """The browser build inside ``root`` (a ``node_modules``-like folder), if there is one."""
        for relative in self.builds:
            path = root / self.package / relative
            if path.is_file():
                return path
        return None


LIBRARIES: tuple[BrowserLibrary, ...] = (
    BrowserLibrary(
        served_as="marked.js",
        package="marked",
        builds=("lib/marked.umd.js", "marked.min.js"),
        licenses=("LICENSE",),
        title="marked",
    ),
    BrowserLibrary(
        served_as="purify.js",
        package="dompurify",
        builds=("dist/purify.min.js", "dist/purify.js"),
        licenses=("LICENSE", "LICENSE-MPL"),
        title="DOMPurify",
    ),
)

# Both builds start with a banner naming their version: "marked v18.2.1", "DOMPurify 3.4.18".
_BANNER_VERSION = re.compile(r"(?:marked v|DOMPurify )(\d+\.\d+\.\d+\S*)")


def library_version(build: Path) -> str | None:
    """The version a browser build's licence banner names (None if it names none)."""
    try:
        with build.open("rb") as file:
            head = file.read(1024).decode("utf-8", "replace")
    except OSError:
        return None
    match = _BANNER_VERSION.search(head)
    return match.group(1) if match else None


def refresh_shipped(node_modules: Path, destination: Path = SHIPPED_DIR) -> list[Path]:
    """Copy every shipped file from ``node_modules`` into ``destination``; the copies made.

    Raises ``FileNotFoundError`` naming the first file ``node_modules`` lacks, before
    anything is copied, so a half-installed folder never leaves a half-refreshed package.
    """
    relatives = [relative for library in LIBRARIES for relative in library.shipped_files]
    for relative in relatives:
        if not (node_modules / relative).is_file():
            raise FileNotFoundError(f"{node_modules / relative} is missing: run 'npm ci' first")
    copies = []
    for relative in relatives:
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(node_modules / relative, target)
        copies.append(target)
    return copies


def refresh_main(argv: list[str]) -> int:
    """``make vendor``: refresh the shipped files from the ``node_modules`` in ``argv``."""
    if len(argv) != 1:
        print("usage: refresh_main([NODE_MODULES])", file=sys.stderr)
        return 2
    try:
        copies = refresh_shipped(Path(argv[0]))
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for copy in copies:
        print(f"{copy.stat().st_size:>8}  {copy}")
    return 0
