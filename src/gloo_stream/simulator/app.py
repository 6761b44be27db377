"""create_app: the simulator as a Starlette app (token, completions, catalogue and admin routes)."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, unquote

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gloo_stream.simulator.completions import CompletionsEndpoint
from gloo_stream.simulator.config import SimulatorConfig
from gloo_stream.simulator.models import catalogue
from gloo_stream.simulator.state import SimulatorState

Handler = Callable[[Request], Awaitable[Response]]
COMPLETIONS_PATHS = ("/ai/v2/chat/completions", "/ai/v2/guarded/chat/completions")
GROUNDED_PATHS = ("/ai/v2/chat/completions/grounded", "/ai/v2/grounded/chat/completions")
_NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


def create_app(config: SimulatorConfig | None = None) -> Starlette:
    """Build a simulator app; its state (counters, faults) is ``app.state.simulator``."""
    state = SimulatorState(config or SimulatorConfig())
    routes = [
        Route("/oauth2/token", _token_endpoint(state), methods=["POST"]),
        *(Route(path, CompletionsEndpoint(state), methods=["POST"]) for path in COMPLETIONS_PATHS),
        *(
            Route(path, CompletionsEndpoint(state, grounded=True), methods=["POST"])
            for path in GROUNDED_PATHS
        ),
        Route("/platform/v2/", _catalogue, methods=["GET"]),
        Route("/_sim/stats", _admin(state, "stats"), methods=["GET"]),
        Route("/_sim/reset", _admin(state, "reset"), methods=["POST"]),
        Route("/_sim/faults", _admin(state, "faults"), methods=["GET", "POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.simulator = state
    return app


def _token_endpoint(state: SimulatorState) -> Handler:
    async def token(request: Request) -> Response:
        """OAuth2 client-credentials grant; credentials by HTTP Basic or in the form."""
        state.count_token_request()
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, 400, headers=_NO_STORE)
        client_id, client_secret = _basic_credentials(request.headers.get("authorization"))
        if client_id is None:
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
        config = state.config
        if not (
            client_id is not None
            and client_secret is not None
            and hmac.compare_digest(client_id.encode(), config.client_id.encode())
            and hmac.compare_digest(client_secret.encode(), config.client_secret.encode())
        ):
            headers = {**_NO_STORE, "www-authenticate": 'Basic realm="gloo"'}
            return JSONResponse({"error": "invalid_client"}, 401, headers=headers)
        body = {
            "access_token": state.issue_token(),
            "expires_in": int(config.token_lifetime),
            "token_type": "Bearer",
        }
        if "scope" in form:
            body["scope"] = form["scope"]
        return JSONResponse(body, headers=_NO_STORE)

    return token


def _basic_credentials(header: str | None) -> tuple[str | None, str | None]:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, sep, client_secret = decoded.partition(":")
    if not sep:
        return None, None
    # RFC 6749 2.3.1 form-encodes both parts before Basic; plain ids are unaffected by unquote.
    return unquote(client_id), unquote(client_secret)


async def _catalogue(request: Request) -> Response:
    """The model catalogue; needs no credentials, like Gloo's."""
    return JSONResponse(catalogue())


def _admin(state: SimulatorState, action: str) -> Handler:
    async def admin(request: Request) -> Response:
        """Simulator control: counters, reset and the fault queue (no auth: test-only)."""
        if action == "stats":
            return JSONResponse(state.stats())
        if action == "reset":
            state.reset()
            return JSONResponse({"ok": True})
        if request.method == "GET":
            return JSONResponse({"faults": state.stats()["faults_pending"]})
        try:
            payload = msgspec.json.decode(await request.body())
            faults = (
                payload["faults"] if isinstance(payload, dict) and "faults" in payload else payload
            )
            state.push_faults(faults if isinstance(faults, list) else [faults])
        except (msgspec.DecodeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, 422)
        return JSONResponse({"ok": True, "faults": state.stats()["faults_pending"]})

    return admin
