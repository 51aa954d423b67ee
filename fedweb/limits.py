"""ASGI middleware: refuse oversized request bodies before they are read.

Django's ASGI handler spools the whole body to a temporary file before any view or
upload handler runs, so the size cap must also be applied at this level: a declared
``Content-Length`` over the cap gets 413 at once, and a body without one is counted
as it arrives and cut off when it passes the cap.
"""

import json

from django.conf import settings

# Room for multipart boundaries and the small form fields sent with a file.
_OVERHEAD = 1024 * 1024


def _too_large_body(limit: int) -> bytes:
    mb = limit // (1024 * 1024)
    return json.dumps(
        {"error": {"code": "too_large", "message": f"The file is larger than the {mb} MB limit.", "details": {}}}
    ).encode()


class BodySizeLimitMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = settings.DATASET_MAX_UPLOAD_BYTES + _OVERHEAD
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > limit
            except ValueError:
                too_large = False
            if too_large:
                return await self._refuse(send, settings.DATASET_MAX_UPLOAD_BYTES)
            return await self.app(scope, receive, send)

        seen = 0

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        try:
            return await self.app(scope, counting_receive, send)
        except BodyTooLarge:
            return await self._refuse(send, settings.DATASET_MAX_UPLOAD_BYTES)

    @staticmethod
    async def _refuse(send, limit):
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": _too_large_body(limit)})


class BodyTooLarge(Exception):
    pass
