"""A document offered for download (the Prüfbericht, the Bericht über offene Beschlüsse, a paper's attachments):
the one place that says how such a response is sent."""

from __future__ import annotations

from urllib.parse import quote

from fastapi.responses import Response

__all__ = ["download"]

#: A saved HTML document brings its own stylesheet and runs nothing.
_HTML_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; sandbox"


def download(content: bytes, name: str, media_type: str, *, public: bool = False) -> Response:
    """``content`` as a file ``name`` to save (``Content-Disposition: attachment``; a name beyond printable ASCII
    also in RFC 6266's UTF-8 form); HTML may run nothing. ``public``: caches may keep it (an OParl file), else
    it is private and not kept."""
    html = media_type.split(";")[0].strip() == "text/html"
    plain = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in name)
    disposition = f'attachment; filename="{plain}"'
    if plain != name:
        disposition += f"; filename*=UTF-8''{quote(name, safe='')}"
    headers = {"Content-Disposition": disposition,
               "Cache-Control": "public, max-age=3600" if public else "private, no-store"}
    if html:
        headers["Content-Security-Policy"] = _HTML_POLICY
    return Response(content, media_type="text/html; charset=utf-8" if html else media_type, headers=headers)
