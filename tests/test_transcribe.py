"""Voice notes to text against a local server speaking OpenAI's transcription wire format."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from server.services.transcribe import TranscribeError, enabled, endpoint, transcribe
from server.settings import Settings
from tests.conftest import free_port
from tests.fake_whisper import KEY, FakeWhisper, sha256

AUDIO = b"OggS\x00\x02" + bytes(range(256)) * 8  # what the gateway hands over: an Ogg voice note
MIME = "audio/ogg; codecs=opus"


@pytest.fixture
def fake():
    f = FakeWhisper()
    yield f
    f.close()


def _settings(tmp_path: Path, url: str | None, key: str | None = KEY, **kw) -> Settings:
    return Settings(data_dir=tmp_path, transcribe_url=url, transcribe_api_key=key, **kw)


def test_enabled_only_with_a_url(tmp_path: Path) -> None:
    assert not enabled(_settings(tmp_path, None))
    assert not enabled(_settings(tmp_path, "  "))
    assert enabled(_settings(tmp_path, "https://api.openai.com/v1"))
    assert endpoint(_settings(tmp_path, "https://api.openai.com/v1/")) == \
        "https://api.openai.com/v1/audio/transcriptions"
    with pytest.raises(TranscribeError, match="not configured"):
        transcribe(_settings(tmp_path, None), AUDIO, mime=MIME, filename="a.ogg")


def test_the_text_comes_back_stripped_and_the_request_is_openais(tmp_path: Path,
                                                                  fake: FakeWhisper) -> None:
    fake.texts[sha256(AUDIO)] = "  Quero devolver uma mesa que comprei.\n"
    settings = _settings(tmp_path, fake.url, transcribe_model="whisper-large-v3")
    assert transcribe(settings, AUDIO, mime=MIME, filename="voz.ogg") == \
        "Quero devolver uma mesa que comprei."
    [req] = fake.requests
    assert req.path == "/v1/audio/transcriptions"
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert req.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert req.fields == {"model": "whisper-large-v3", "language": "pt",
                          "response_format": "json"}
    assert (req.filename, req.size, req.sha256) == ("voz.ogg", len(AUDIO), sha256(AUDIO))
    assert req.content_type == "audio/ogg"


def test_other_audio_gets_the_default_text_through_a_given_client(tmp_path: Path,
                                                                   fake: FakeWhisper) -> None:
    with httpx.Client() as http:
        text = transcribe(_settings(tmp_path, fake.url), b"\x00\x01", mime="audio/mpeg",
                          filename="a.mp3", http=http)
    assert text == fake.default


def test_no_key_sends_no_authorization(tmp_path: Path) -> None:
    open_fake = FakeWhisper(key=None)  # a self-hosted server with no key
    try:
        assert transcribe(_settings(tmp_path, open_fake.url, key=None), AUDIO, mime=MIME,
                          filename="a.ogg") == open_fake.default
        assert "Authorization" not in open_fake.requests[0].headers
    finally:
        open_fake.close()


def test_a_wrong_key_fails_without_the_key_in_the_message(tmp_path: Path,
                                                          fake: FakeWhisper) -> None:
    wrong = "sk-wrong-key-abcdef-0123456789"
    with pytest.raises(TranscribeError) as err:
        transcribe(_settings(tmp_path, fake.url, key=wrong), AUDIO, mime=MIME,
                   filename="a.ogg")
    assert "HTTP 401" in str(err.value) and "Incorrect API key" in str(err.value)
    # The fake echoed the key in full: it is scrubbed, whole and in part, from everything.
    seen = " ".join([str(err.value), err.value.reason, repr(err.value)])
    assert wrong not in seen and wrong[:12] not in seen
    assert fake.requests[0].headers["Authorization"] == f"Bearer {wrong}"


def test_a_server_error_fails(tmp_path: Path, fake: FakeWhisper) -> None:
    fake.script.append(("status", 500))
    with pytest.raises(TranscribeError, match="HTTP 500: The server had an error") as err:
        transcribe(_settings(tmp_path, fake.url), AUDIO, mime=MIME, filename="a.ogg")
    assert KEY not in str(err.value)


def test_a_server_that_never_answers_times_out(tmp_path: Path, fake: FakeWhisper) -> None:
    fake.script.append(("hang",))
    settings = _settings(tmp_path, fake.url, transcribe_timeout_seconds=0.5)
    t0 = time.monotonic()
    with pytest.raises(TranscribeError, match="no answer within 0.5 s") as err:
        transcribe(settings, AUDIO, mime=MIME, filename="a.ogg")
    assert time.monotonic() - t0 < 5
    assert fake.hung.is_set() and KEY not in str(err.value)


def test_an_unreachable_server_fails(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(TranscribeError, match="ConnectError") as err:
        transcribe(_settings(tmp_path, url), AUDIO, mime=MIME, filename="a.ogg")
    assert KEY not in str(err.value)


@pytest.mark.parametrize("body, why", [
    (b"<html>Bad gateway</html>", "not JSON"),
    (b'{"transcript": "oi"}', "holds no text"),
    (b'{"text": null}', "holds no text"),
    (b'["oi"]', "holds no text"),
])
def test_an_answer_without_text_fails(tmp_path: Path, fake: FakeWhisper, body: bytes,
                                      why: str) -> None:
    fake.script.append(("garbage", body))
    with pytest.raises(TranscribeError, match=why):
        transcribe(_settings(tmp_path, fake.url), AUDIO, mime=MIME, filename="a.ogg")


@pytest.mark.parametrize("heard", ["", "   \n "])
def test_silence_is_the_empty_text(tmp_path: Path, fake: FakeWhisper, heard: str) -> None:
    fake.script.append(("ok", heard))
    assert transcribe(_settings(tmp_path, fake.url), AUDIO, mime=MIME, filename="a.ogg") == ""


def test_empty_audio_is_not_sent(tmp_path: Path, fake: FakeWhisper) -> None:
    with pytest.raises(TranscribeError, match="empty"):
        transcribe(_settings(tmp_path, fake.url), b"", mime=MIME, filename="a.ogg")
    assert fake.requests == []


def test_the_fake_refuses_a_form_without_model(fake: FakeWhisper) -> None:
    resp = httpx.post(f"{fake.url}/audio/transcriptions",
                      headers={"Authorization": f"Bearer {KEY}"},
                      files={"file": ("a.ogg", AUDIO, "audio/ogg")})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == "you must provide a model parameter"
