"""The merchant's pricing API over its rate cards: published rates (public), multiplier changes (bearer token),
history (public). Every change is recorded with its UTC time by `protocolbanks.sdk.pricing.RateCard`.

    GET  {prefix}                                  {"cards": {name: published card}}
    GET  {prefix}/{card}                           the published card (what payers verify quotes against)
    GET  {prefix}/{card}/history                   {"card", "changes": [{"at", "name", "old", "new", "version"}]}
    PUT  {prefix}/{card}/multipliers/{name}        {"value": "1.5", "at": optional ISO time}  -> 200
    POST {prefix}/{card}/multipliers               {"name": "peak", "value": "1.5", "at": ...} -> 201
         both need `Authorization: Bearer <token>` (401 without it); answer {"change": ..., "rate": published}

Values are decimal strings or integers; a JSON number with a fraction is refused (send "1.5"): prices never pass
through a float. The token comes from the `token` argument or the `PB_RATE_API_TOKEN` environment variable;
without one every change is refused.

`RateDesk` is the framework-free core; `rate_router` (FastAPI) and `rate_blueprint` (Flask) are thin wrappers.
"""

# no `from __future__ import annotations`: FastAPI reads the route functions' annotations at run time
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from protocolbanks.sdk.pricing import RateCard, parse_iso_utc

TOKEN_ENV = "PB_RATE_API_TOKEN"


@dataclass(frozen=True)
class DeskAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def _answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> DeskAnswer:
    return DeskAnswer(status, body, headers or {})


def _error(status: int, reason: str, message: str) -> DeskAnswer:
    headers = {"WWW-Authenticate": 'Bearer realm="rates"'} if status == 401 else None
    return _answer(status, {"error": reason, "message": message}, headers)


def _no_fractional_numbers(text: str) -> Decimal:
    raise ValueError(f"JSON number {text} has a fraction: send decimal values as strings (\"1.5\")")


class RateDesk:
    """Named rate cards and who may change them."""

    def __init__(self, cards: Mapping[str, RateCard] | RateCard, *, token: str | None = None) -> None:
        self.cards: dict[str, RateCard] = {"default": cards} if isinstance(cards, RateCard) else dict(cards)
        self._token = token if token is not None else os.environ.get(TOKEN_ENV)

    def authorized(self, authorization: str | None) -> bool:
        if not self._token or not authorization:
            return False
        scheme, _, credentials = authorization.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), self._token.encode())

    def list_cards(self) -> DeskAnswer:
        return _answer(200, {"cards": {name: card.published() for name, card in self.cards.items()}})

    def published(self, card: str) -> DeskAnswer:
        found = self.cards.get(card)
        return _answer(200, found.published()) if found else _error(404, "unknown_card", f"no rate card {card!r}")

    def history(self, card: str) -> DeskAnswer:
        found = self.cards.get(card)
        if found is None:
            return _error(404, "unknown_card", f"no rate card {card!r}")
        return _answer(200, {"card": card, "changes": [change.to_dict() for change in found.history]})

    def change(self, card: str, multiplier: str | None, body: bytes, authorization: str | None) -> DeskAnswer:
        """Sets a multiplier (from the path, or the body's "name"); 201 when the name came in the body."""
        if not self.authorized(authorization):
            return _error(401, "unauthorized", "a bearer token is required to change rates")
        found = self.cards.get(card)
        if found is None:
            return _error(404, "unknown_card", f"no rate card {card!r}")
        try:
            data = json.loads(body or b"{}", parse_float=_no_fractional_numbers)
        except ValueError as exc:
            return _error(422, "invalid_body", str(exc))
        if not isinstance(data, dict):
            return _error(422, "invalid_body", "the body must be a JSON object")
        name = multiplier if multiplier is not None else data.get("name")
        value = data.get("value")
        if not isinstance(name, str) or not name or isinstance(value, bool) or not isinstance(value, (str, int)):
            return _error(422, "invalid_body", 'expected {"value": "<decimal>"} and a multiplier name')
        try:
            at = parse_iso_utc(data["at"], "at") if data.get("at") is not None else None
            change = found.set_multiplier(name, value, at=at)
        except (TypeError, ValueError) as exc:
            return _error(422, "invalid_change", str(exc))
        return _answer(201 if multiplier is None else 200, {"change": change.to_dict(), "rate": found.published()})


def rate_router(desk: RateDesk, *, prefix: str = "/rates") -> Any:
    """The pricing API as a FastAPI `APIRouter` (include it with `app.include_router(...)`)."""
    from fastapi import APIRouter, Request
    from fastapi.responses import JSONResponse

    router = APIRouter(prefix=prefix, tags=["rates"])

    def respond(answer: DeskAnswer) -> JSONResponse:
        return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)

    async def list_cards() -> JSONResponse:
        return respond(desk.list_cards())

    async def published(card: str) -> JSONResponse:
        return respond(desk.published(card))

    async def history(card: str) -> JSONResponse:
        return respond(desk.history(card))

    async def put_multiplier(card: str, name: str, request: Request) -> JSONResponse:
        return respond(desk.change(card, name, await request.body(), request.headers.get("authorization")))

    async def post_multiplier(card: str, request: Request) -> JSONResponse:
        return respond(desk.change(card, None, await request.body(), request.headers.get("authorization")))

    router.add_api_route("", list_cards, methods=["GET"])
    router.add_api_route("/{card}", published, methods=["GET"])
    router.add_api_route("/{card}/history", history, methods=["GET"])
    router.add_api_route("/{card}/multipliers/{name}", put_multiplier, methods=["PUT"])
    router.add_api_route("/{card}/multipliers", post_multiplier, methods=["POST"])
    return router


def rate_blueprint(desk: RateDesk, *, prefix: str = "/rates", name: str = "pb_rates") -> Any:
    """The pricing API as a Flask `Blueprint` (register it with `app.register_blueprint(...)`)."""
    from flask import Blueprint, Response, request

    blueprint = Blueprint(name, __name__, url_prefix=prefix)

    def respond(answer: DeskAnswer) -> Response:
        return Response(json.dumps(answer.body), status=answer.status, headers=answer.headers,
                        mimetype="application/json")

    blueprint.add_url_rule("", "list_cards", lambda: respond(desk.list_cards()), methods=["GET"])
    blueprint.add_url_rule("/<card>", "published", lambda card: respond(desk.published(card)), methods=["GET"])
    blueprint.add_url_rule("/<card>/history", "history", lambda card: respond(desk.history(card)), methods=["GET"])
    blueprint.add_url_rule("/<card>/multipliers/<multiplier>", "put_multiplier",
                           lambda card, multiplier: respond(desk.change(card, multiplier, request.get_data(),
                                                                        request.headers.get("Authorization"))),
                           methods=["PUT"])
    blueprint.add_url_rule("/<card>/multipliers", "post_multiplier",
                           lambda card: respond(desk.change(card, None, request.get_data(),
                                                            request.headers.get("Authorization"))),
                           methods=["POST"])
    return blueprint
