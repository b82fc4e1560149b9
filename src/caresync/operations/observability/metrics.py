"""Placeholder: the helper building this module replaces it (request metrics middleware)."""

from starlette.types import ASGIApp, Receive, Scope, Send


class RequestMetrics:
    """Placeholder pass-through middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
