"""The marked and DOMPurify copies shipped inside the package are exactly what
package-lock.json pins: byte for byte what ``npm ci`` installs, and the files of the tarballs
whose sha512 the lock records. After a change to the lock, ``make vendor`` refreshes them."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from gloo_stream.proxy.routes.vendor import (
    LIBRARIES,
    SHIPPED_DIR,
    BrowserLibrary,
    library_version,
    refresh_shipped,
)

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "node_modules"
LOCK = json.loads((ROOT / "package-lock.json").read_text())["packages"]
SHIPPED = [
    pytest.param(library, relative, id=relative)
    for library in LIBRARIES
    for relative in library.shipped_files
]


def locked(library: BrowserLibrary) -> dict[str, str]:
    """The lock's entry for a library: its version and the integrity of its tarball."""
    return LOCK[f"node_modules/{library.package}"]  # type: ignore[no-any-return]


def cached_tarball(integrity: str) -> bytes | None:
    """The npm cache's copy of a tarball (content-addressed by its sha512), if it has one."""
    algorithm, _, digest = integrity.partition("-")
    hexdigest = base64.b64decode(digest).hex()
    # npm reads its settings from npm_config_* variables, in any case.
    setting = next((v for k, v in os.environ.items() if k.lower() == "npm_config_cache"), None)
    cache = Path(setting) if setting else Path.home() / ".npm"
    path = cache / "_cacache" / "content-v2" / algorithm / hexdigest[:2] / hexdigest[2:4]
    path = path / hexdigest[4:]
    return path.read_bytes() if path.is_file() else None


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda library: library.package)
def test_the_shipped_build_names_the_locked_version(library: BrowserLibrary) -> None:
    build = library.find_build(SHIPPED_DIR)
    assert build is not None, f"{library.title} is not in {SHIPPED_DIR}: run `make vendor`"
    assert library_version(build) == locked(library)["version"], "run `make vendor`"


@pytest.mark.parametrize(("library", "relative"), SHIPPED)
def test_the_shipped_file_is_what_npm_ci_installs(library: BrowserLibrary, relative: str) -> None:
    installed = NODE_MODULES / library.package / "package.json"
    if not installed.is_file():
        pytest.fail(f"{installed} is missing: run `make browser-deps` (npm ci)")
    version = json.loads(installed.read_text())["version"]
    assert version == locked(library)["version"], "node_modules is stale: run `npm ci`"
    shipped = (SHIPPED_DIR / relative).read_bytes()
    assert shipped == (NODE_MODULES / relative).read_bytes(), "run `make vendor`"


@pytest.mark.parametrize(("library", "relative"), SHIPPED)
def test_the_shipped_file_is_in_the_locked_tarball(library: BrowserLibrary, relative: str) -> None:
    integrity = locked(library)["integrity"]
    tarball = cached_tarball(integrity)
    if tarball is None:
        pytest.skip(f"{library.package}'s tarball is not in the npm cache (npm ci puts it there)")
    algorithm, _, digest = integrity.partition("-")
    assert base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode() == digest
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        member = archive.extractfile("package/" + relative.removeprefix(library.package + "/"))
        assert member is not None
        assert (SHIPPED_DIR / relative).read_bytes() == member.read()


def test_refresh_copies_every_shipped_file(tmp_path: Path) -> None:
    source = tmp_path / "node_modules"
    for library in LIBRARIES:
        for relative in library.shipped_files:
            (source / relative).parent.mkdir(parents=True, exist_ok=True)
            (source / relative).write_text(f"/* {relative} */")
    copies = refresh_shipped(source, tmp_path / "vendor")
    assert len(copies) == sum(len(library.shipped_files) for library in LIBRARIES)
    for copy in copies:
        relative = copy.relative_to(tmp_path / "vendor").as_posix()
        assert copy.read_text() == f"/* {relative} */"


def test_refresh_from_a_half_installed_folder_copies_nothing(tmp_path: Path) -> None:
    source = tmp_path / "node_modules"
    (source / "marked" / "lib").mkdir(parents=True)
    (source / "marked" / "lib" / "marked.umd.js").write_text("/* marked */")
    with pytest.raises(FileNotFoundError, match="npm ci"):
        refresh_shipped(source, tmp_path / "vendor")
    assert not (tmp_path / "vendor").exists()
