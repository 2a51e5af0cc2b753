"""A local HTTP server speaking OpenAI's files and fine-tuning wire format.

It checks an uploaded training file the way OpenAI does (each line a JSON object with
``messages``, roles system/user/assistant, at least one assistant message, string contents)
and walks a job through validating_files, queued, running and succeeded (or failed).
"""

from __future__ import annotations

import json
import re
import threading
from email.parser import BytesParser
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEY = "sk-test-ft-5678"
STEPS = ["validating_files", "queued", "running", "succeeded"]


def check_jsonl(data: bytes) -> str | None:
    """Why OpenAI would reject this training file, or None."""
    lines = data.decode().splitlines()
    if len(lines) < 10:
        return f"Training file has {len(lines)} example(s), but must have at least 10"
    for n, line in enumerate(lines, 1):
        try:
            ex = json.loads(line)
        except json.JSONDecodeError:
            return f"Line {n} is not valid JSON"
        msgs = ex.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return f"Line {n} has no messages"
        if any(m.get("role") not in ("system", "user", "assistant")
               or not isinstance(m.get("content"), str) or not m["content"] for m in msgs):
            return f"Line {n} has a message with an invalid role or content"
        if msgs[-1]["role"] != "assistant":
            return f"Line {n} does not end with an assistant message"
    return None


class FakeOpenAIFineTuning:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, code: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _error(self, code: int, message: str, err_code: str | None = None) -> None:
                self._send(code, {"error": {"message": message, "type": "invalid_request_error",
                                            "param": None, "code": err_code}})

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {KEY}":
                    return True
                self._error(401, "Incorrect API key provided.", "invalid_api_key")
                return False

            def do_POST(self) -> None:  # noqa: N802
                if not self._authorized():
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/v1/files":
                    msg = BytesParser(policy=default).parsebytes(
                        b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n"
                        + body)
                    parts = {p.get_param("name", header="content-disposition"): p
                             for p in msg.iter_parts()}
                    if parts["purpose"].get_content().strip() != "fine-tune":
                        return self._error(400, "purpose must be fine-tune")
                    data = parts["file"].get_payload(decode=True)
                    fid = f"file-{len(fake.files) + 1}"
                    fake.files[fid] = data
                    return self._send(200, {"id": fid, "object": "file", "bytes": len(data),
                                            "created_at": 1, "filename": "train.jsonl",
                                            "purpose": "fine-tune", "status": "processed"})
                if self.path == "/v1/fine_tuning/jobs":
                    req = json.loads(body)
                    if req.get("training_file") not in fake.files:
                        return self._error(400, "invalid training_file", "invalid_file")
                    jid = f"ftjob-{len(fake.jobs) + 1}"
                    fake.jobs[jid] = {
                        "id": jid, "object": "fine_tuning.job", "model": req["model"],
                        "created_at": 1, "finished_at": None, "fine_tuned_model": None,
                        "organization_id": "org-test", "result_files": [], "seed": 1,
                        "status": STEPS[0], "training_file": req["training_file"],
                        "validation_file": None, "trained_tokens": None, "error": None,
                        "hyperparameters": req.get("hyperparameters") or {"n_epochs": "auto"},
                        "suffix": req.get("suffix")}
                    fake.polls[jid] = 0
                    return self._send(200, fake.jobs[jid])
                self._error(404, f"unknown path {self.path}")

            def do_GET(self) -> None:  # noqa: N802
                if not self._authorized():
                    return
                m = re.fullmatch(r"/v1/fine_tuning/jobs/([\w-]+)", self.path)
                if not m or m[1] not in fake.jobs:
                    return self._error(404, "No such job")
                job = fake.jobs[m[1]]
                fake.polls[m[1]] += 1
                problem = check_jsonl(fake.files[job["training_file"]])
                if problem:
                    job.update(status="failed", error={"code": "invalid_training_file",
                                                        "message": problem,
                                                        "param": "training_file"})
                elif job["status"] != "succeeded":
                    job["status"] = STEPS[min(fake.polls[m[1]], len(STEPS) - 1)]
                    if job["status"] == "succeeded":
                        job.update(finished_at=2, trained_tokens=12345,
                                   fine_tuned_model=f"ft:{job['model']}:org-test:"
                                   f"{job['suffix'] or 'custom'}:abc123")
                self._send(200, job)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
