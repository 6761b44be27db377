"""The chat page and the two browser libraries it loads, served from local files only.

The page lives in ``proxy/static/``. marked and DOMPurify ship inside the package, in
``proxy/static/vendor/`` (see ``gloo_stream.proxy.routes.vendor``), never from a CDN;
``PROXY_NODE_MODULES`` serves them from an npm ``node_modules`` folder instead.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gloo_stream.proxy.failures import not_found
from gloo_stream.proxy.routes.vendor import LIBRARIES, SHIPPED_DIR, BrowserLibrary, library_version
from gloo_stream.proxy.settings import ProxySettings

__all__ = ["STATIC_DIR", "library_root", "page_libraries", "page_routes"]

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
_NO_CACHE = {"cache-control": "no-cache"}


def library_root(settings: ProxySettings) -> Path:
    """The folder the libraries are served from: ``PROXY_NODE_MODULES``, else the package's."""
    if settings.proxy_node_modules:
        return Path(settings.proxy_node_modules)
    return SHIPPED_DIR


def _missing(library: BrowserLibrary, settings: ProxySettings) -> str:
    """Why ``/vendor/<name>`` cannot be served, and what to do, for whoever runs the proxy."""
    if settings.proxy_node_modules:
        return (
            f"PROXY_NODE_MODULES={settings.proxy_node_modules} has no "
            f"{library.package}/{library.builds[0]}: run 'npm ci' where that folder's "
            "package-lock.json is, or unset PROXY_NODE_MODULES to use the copy shipped with "
            "gloo-stream."
        )
    return (
        f"{library.title} is missing from this gloo-stream installation "
        f"({SHIPPED_DIR / library.package / library.builds[0]}): reinstall gloo-stream "
        "(pip install --force-reinstall gloo-stream), or set PROXY_NODE_MODULES to a "
        "node_modules folder that holds marked and dompurify."
    )


def page_libraries(settings: ProxySettings) -> tuple[str, list[str]]:
    """What the page's libraries are (``"marked 18.2.1, DOMPurify 3.4.18 (...)"``) and, for
    each one that cannot be served, why (empty when both are there)."""
    root = library_root(settings)
    found, problems = [], []
    for library in LIBRARIES:
        build = library.find_build(root)
        if build is None:
            problems.append(_missing(library, settings))
        else:
            found.append(f"{library.title} {library_version(build) or '(version unknown)'}")
    where = "shipped with the package" if root == SHIPPED_DIR else f"from {root}"
    summary = f"{', '.join(found)} ({where})" if found else "none: markdown is off"
    return summary, problems


_UPSTREAM_META = '<meta name="gloo-upstream" content="">'


def _index_for(settings: ProxySettings) -> Callable[[Request], Awaitable[Response]]:
    # The page names who answered: the upstream's host and port only (never a path, a query or
    # credentials in the URL); the page says "Gloo" for Gloo's own hosts.
    parts = urlsplit(settings.gloo_api_url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    meta = f'<meta name="gloo-upstream" content="{html.escape(host)}">'

    async def index(request: Request) -> Response:
        page = STATIC_DIR / "index.html"
        if not page.is_file():
            message = "The chat page is not installed (proxy/static/index.html is missing)."
            return not_found(message).response()
        text = page.read_text(encoding="utf-8").replace(_UPSTREAM_META, meta, 1)
        return HTMLResponse(text, headers=_NO_CACHE)

    return index


def _vendor_route(library: BrowserLibrary, settings: ProxySettings) -> Route:
    async def vendor(request: Request) -> Response:
        build = library.find_build(library_root(settings))
        if build is None:
            message = f"/vendor/{library.served_as}: {_missing(library, settings)}"
            return not_found(message).response()
        return FileResponse(build, media_type="text/javascript", headers=_NO_CACHE)

    return Route(f"/vendor/{library.served_as}", vendor, methods=["GET", "HEAD"])


def page_routes(settings: ProxySettings) -> list[BaseRoute]:
    """``/``, ``/static/...`` and ``/vendor/...``."""
    return [
        Route("/", _index_for(settings), methods=["GET", "HEAD"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static"),
        *(_vendor_route(library, settings) for library in LIBRARIES),
    ]
