"""QR codes of campaign deep links as PNG bytes, ready to send as a Telegram photo."""

from __future__ import annotations

import io

import segno


def qr_png(url: str, *, scale: int = 10) -> bytes:
    """Same settings as `xianke campaign qr`: error correction M (survives a crease or a smudge on
    packaging) and the standard 4-module quiet zone."""
    buffer = io.BytesIO()
    segno.make(url, error="m", micro=False).save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()
