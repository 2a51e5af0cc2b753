"""Voice notes to text through an OpenAI-compatible transcription endpoint.

``ATENDE_TRANSCRIBE_URL`` names the base URL (OpenAI's ``https://api.openai.com/v1``, or a
self-hosted Whisper server speaking the same wire format); the audio is posted as multipart to
``{url}/audio/transcriptions`` with the model, ``language=pt`` and ``response_format=json``, and
the answer's ``text`` comes back stripped. Anything else (an error status, a timeout, a refused
connection, an answer that is not JSON or holds no text) raises ``TranscribeError``, whose
message never holds the API key, even when the server echoes it back.

The timeout (``ATENDE_TRANSCRIBE_TIMEOUT_SECONDS``) bounds each phase of the request (connect,
send, wait for the answer), as httpx counts it: a server that never answers fails after it.
"""

from __future__ import annotations

import httpx

from server.settings import Settings

LANGUAGE = "pt"
MAX_DETAIL = 200  # characters of the server's own error message kept in ours


class TranscribeError(RuntimeError):
    """A voice note could not be transcribed; ``reason`` says why (never the API key)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def enabled(settings: Settings) -> bool:
    """A transcription endpoint is configured."""
    return bool(settings.transcribe_url and settings.transcribe_url.strip())


def endpoint(settings: Settings) -> str:
    """Where the audio is posted."""
    return f"{(settings.transcribe_url or '').strip().rstrip('/')}/audio/transcriptions"


def transcribe(settings: Settings, audio: bytes, *, mime: str, filename: str,
               http: httpx.Client | None = None) -> str:
    """The text spoken in ``audio`` (stripped; empty when the server heard nothing).

    ``http`` is a client to reuse (the runtime's); without one a client is opened for the call.
    """
    if not enabled(settings):
        raise TranscribeError("transcription is not configured (ATENDE_TRANSCRIBE_URL)")
    if not audio:
        raise TranscribeError("the audio is empty")
    key = settings.transcribe_api_key.get_secret_value() if settings.transcribe_api_key else ""
    url = endpoint(settings)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        if http is None:
            with httpx.Client() as client:
                resp = _post(client, settings, url, headers, audio, mime, filename)
        else:
            resp = _post(http, settings, url, headers, audio, mime, filename)
    except httpx.TimeoutException:
        raise _error(key, f"{url}: no answer within "
                          f"{settings.transcribe_timeout_seconds:g} s") from None
    except httpx.HTTPError as exc:
        raise _error(key, f"{url}: {type(exc).__name__}: {exc}") from None
    if not resp.is_success:
        raise _error(key, f"{url}: HTTP {resp.status_code}{_detail(resp, key)}")
    try:
        data = resp.json()
    except ValueError:
        raise _error(key, f"{url}: the answer is not JSON") from None
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str):
        raise _error(key, f"{url}: the answer holds no text")
    return text.strip()


def _post(client: httpx.Client, settings: Settings, url: str, headers: dict[str, str],
          audio: bytes, mime: str, filename: str) -> httpx.Response:
    return client.post(
        url, headers=headers,
        files={"file": (filename or "audio", audio, mime or "application/octet-stream")},
        data={"model": settings.transcribe_model, "language": LANGUAGE,
              "response_format": "json"},
        timeout=httpx.Timeout(settings.transcribe_timeout_seconds))


def _detail(resp: httpx.Response, key: str) -> str:
    """The server's own message (OpenAI's ``{"error": {"message": ...}}``, else the body's
    start), short, on one line, the key scrubbed before it is cut (a cut key would leak its
    start)."""
    try:
        data = resp.json()
    except ValueError:
        said = resp.text
    else:
        error = data.get("error") if isinstance(data, dict) else None
        said = str(error.get("message", "") if isinstance(error, dict) else error or data)
    if key:
        said = said.replace(key, "***")
    said = " ".join(said.split())[:MAX_DETAIL]
    return f": {said}" if said else ""


def _error(key: str, reason: str) -> TranscribeError:
    """The error, with the key scrubbed out of whatever the server or httpx said."""
    if key:
        reason = reason.replace(key, "***")
    return TranscribeError(reason)
