"""Files of messages: fetched from the gateway, checked, kept once by their content.

A file is stored under ``DATA_DIR/media/<sha256[:2]>/<sha256>``: the same photo forwarded by a
hundred customers is kept once, and a name can never point outside the folder. Before it is
kept, its size is bounded (while it streams, in the adapter) and its bytes must agree with the
MIME type the gateway declared (``puremagic`` reads the file's magic numbers; a pure-Python
library, so no libmagic to install): an ``.exe`` sent as ``image/jpeg`` is refused. A refused
file leaves its reason in the message's journey; the message itself is always kept.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import httpx
import puremagic
from sqlalchemy.orm import Session, sessionmaker

from gateway_bridge import Media, NotOffered, SendError, adapter_for
from server.schema import Instance, Message
from server.services import journey
from server.services.instances import config, redact

log = logging.getLogger(__name__)
EXECUTABLE = ("application/x-dosexec", "application/x-msdownload", "application/x-executable",
              "application/x-sharedlib", "application/x-mach-binary", "application/x-elf",
              "application/vnd.microsoft.portable-executable")
# Programs puremagic does not name: ELF (Linux, Android) and Mach-O (macOS, iOS) by their magic.
PROGRAM_MAGIC = ((b"\x7fELF", "application/x-elf"),
                 *((m, "application/x-mach-binary") for m in (
                     b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe",
                     b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe")))
# What a sniffed container may hold: an Ogg file is a voice note or a video, an MP4 the same,
# a ZIP is every Office document.
CONTAINERS = {"application/ogg": {"audio", "video"}, "video/mp4": {"video", "audio"},
              "audio/mp4": {"audio", "video"}, "application/zip": {"application"},
              "video/webm": {"video", "audio"}, "audio/webm": {"audio", "video"}}


class Refused(ValueError):
    """The file is not kept; the message says why, for the journey."""


def sniff(data: bytes) -> str | None:
    """The file's MIME type as its bytes tell it, or None when they tell nothing (plain text,
    CSV, a format puremagic does not know)."""
    for magic, mime in PROGRAM_MAGIC:
        if data.startswith(magic):
            return mime
    try:
        return str(puremagic.from_string(data, mime=True)) or None
    except (puremagic.PureError, ValueError):
        return None


def check(data: bytes, declared: str | None) -> str:
    """The MIME type to keep for these bytes, or Refused when they are not what was declared."""
    sniffed = sniff(data)
    declared = (declared or "").split(";")[0].strip().lower() or None
    if sniffed in EXECUTABLE:
        raise Refused(f"the file is a program ({sniffed}), not kept")
    if declared is None:
        return sniffed or "application/octet-stream"
    family = declared.split("/")[0]
    if sniffed is None:
        if family in ("image", "video", "audio"):
            raise Refused(f"declared {declared}, but the bytes are not a known {family} format")
        return declared
    allowed = CONTAINERS.get(sniffed, {sniffed.split("/")[0]})
    if family not in allowed and declared != sniffed:
        raise Refused(f"declared {declared}, but the bytes are {sniffed}")
    return declared


def path_of(data_dir: Path, sha256: str) -> Path:
    return data_dir / "media" / sha256[:2] / sha256


def keep(data_dir: Path, data: bytes, declared: str | None, *, max_bytes: int,
         filename: str | None = None) -> dict[str, Any]:
    """Check and store a file; returns what the message records of it. Refused if not kept."""
    if len(data) > max_bytes:
        raise Refused(f"the file has {len(data)} bytes, over the limit of {max_bytes}")
    mime = check(data, declared)
    sha = hashlib.sha256(data).hexdigest()
    path = path_of(data_dir, sha)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # A name of its own per write: two threads keeping the same photo at once must not
        # move each other's half-written file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)  # whole or absent: never a half-written file under its hash
    return {"state": "stored", "sha256": sha, "size": len(data), "mime": mime,
            **({"filename": filename} if filename else {})}


def fetch(http: httpx.Client, sessions: sessionmaker[Session], data_dir: Path,
          message_id: int, *, max_bytes: int) -> str:
    """Download an inbound message's file from its gateway and keep it; returns the media
    state (stored, refused, failed). Raises SendError when the gateway may answer later."""
    with sessions() as s:
        msg = s.get_one(Message, message_id)
        media = dict(msg.media or {})
        if media.get("state") != "waiting":
            return str(media.get("state"))
        inst = s.get_one(Instance, msg.instance_id)
        provider, cfg = inst.provider, config(inst)
    ref = Media(mime=media.get("mime"), ref=media.get("ref"), url=media.get("url"),
                data=media.get("data"), filename=media.get("filename"), size=media.get("size"))
    try:
        data, given = adapter_for(provider).download(http, cfg, ref, max_bytes=max_bytes)
        kept = keep(data_dir, data, ref.mime or given, max_bytes=max_bytes,
                    filename=ref.filename)
    except (Refused, ValueError) as exc:
        return _settle(sessions, message_id, media, "refused", redact(str(exc), cfg))
    except NotOffered as exc:
        return _settle(sessions, message_id, media, "failed", redact(str(exc), cfg))
    except SendError as exc:
        if exc.retryable:
            raise
        return _settle(sessions, message_id, media, "failed", redact(str(exc), cfg))
    with sessions.begin() as s:
        s.get_one(Message, message_id).media = {**_public(media), **kept}
        journey.record(s, message_id, "media_stored", sha256=kept["sha256"], size=kept["size"],
                       mime=kept["mime"])
    return "stored"


def _public(media: dict[str, Any]) -> dict[str, Any]:
    """What stays of the gateway's handle once the file is kept (its inline copy does not)."""
    return {k: v for k, v in media.items() if k not in ("data", "url", "ref")}


def _settle(sessions: sessionmaker[Session], message_id: int, media: dict[str, Any],
            state: str, reason: str) -> str:
    with sessions.begin() as s:
        s.get_one(Message, message_id).media = {**_public(media), "state": state,
                                                "reason": reason}
        journey.record(s, message_id, f"media_{state}", reason=reason)
    log.info("media of message %d %s: %s", message_id, state, reason)
    return state
