"""The chat page and the two browser libraries it loads, served from local files only.

The page lives in ``proxy/static/``. marked and DOMPurify come from an npm ``node_modules``
folder (pinned by the project's package.json), never from a CDN: ``PROXY_NODE_MODULES``, else
``node_modules`` in the working directory, else at the root of the source checkout.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gloo_stream.config import ProxySettings

__all__ = ["STATIC_DIR", "find_node_modules", "static_routes"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Each library: where its browser build sits inside node_modules, best first.
VENDOR_FILES: dict[str, tuple[str, ...]] = {
    "marked.js": ("marked/marked.min.js", "marked/lib/marked.umd.js"),
    "purify.js": ("dompurify/dist/purify.min.js", "dompurify/dist/purify.js"),
}
_NO_CACHE = {"cache-control": "no-cache"}


def find_node_modules(settings: ProxySettings) -> Path | None:
    """The ``node_modules`` folder to serve the libraries from, if there is one."""
    if settings.proxy_node_modules:
        path = Path(settings.proxy_node_modules)
        return path if path.is_dir() else None
    # proxy/ -> gloo_stream/ -> src/ -> the checkout's root
    for candidate in (Path.cwd() / "node_modules", STATIC_DIR.parents[3] / "node_modules"):
        if candidate.is_dir():
            return candidate
    return None


def _not_found(message: str) -> Response:
    return JSONResponse(
        {"error": {"message": message, "type": "not_found", "param": None, "code": "not_found"}},
        status_code=404,
    )


async def _index(request: Request) -> Response:
    index = STATIC_DIR / "index.html"
    if not index.is_file():
        return _not_found("The chat page is not installed (proxy/static/index.html is missing).")
    return FileResponse(index, headers=_NO_CACHE)


def _vendor_route(name: str, settings: ProxySettings) -> Route:
    async def vendor(request: Request) -> Response:
        root = find_node_modules(settings)
        if root is None:
            return _not_found(
                f"/vendor/{name} needs the npm packages: run 'npm ci' at the project root "
                "(or set PROXY_NODE_MODULES to a node_modules folder)."
            )
        for relative in VENDOR_FILES[name]:
            path = root / relative
            if path.is_file():
                return FileResponse(path, media_type="text/javascript", headers=_NO_CACHE)
        return _not_found(f"{name} is not in {root}: run 'npm ci' at the project root.")

    return Route(f"/vendor/{name}", vendor, methods=["GET", "HEAD"])


def static_routes(settings: ProxySettings) -> list[BaseRoute]:
    """``/``, ``/static/...`` and ``/vendor/...``."""
    return [
        Route("/", _index, methods=["GET", "HEAD"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static"),
        *(_vendor_route(name, settings) for name in VENDOR_FILES),
    ]
