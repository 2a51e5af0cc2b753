"""A pairing code as a picture: WAHA (and Evolution, when asked for the code rather than the
image) gives the QR code's text, and the phone can only scan an image. segno draws it as SVG,
with no image library, in the quiet-zone and error-correction WhatsApp's scanner expects."""

from __future__ import annotations

import segno


def as_image(code: str) -> str:
    """A ``data:`` URI the page can show: the gateway's own image, or one drawn from the text."""
    if code.startswith("data:image/"):
        return code
    return str(segno.make(code, error="m", micro=False).svg_data_uri(scale=6, border=4))
