"""The lists bench still runs against today's services, on a small company: every case finds
what it should (a bench that silently measures an empty list would measure nothing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_lists_bench_runs_and_every_case_finds_rows(tmp_path: Path) -> None:
    out = tmp_path / "lists.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "lists.py"), "--db", "sqlite",
                    "--contacts", "3000", "--messages", "30000", "--repeat", "3",
                    "--json", str(out)], check=True, capture_output=True, cwd=ROOT, timeout=300)
    result = json.loads(out.read_text())["results"][0]
    found = {c["case"]: c["rows"] for c in result["cases"]}
    assert len(found) == 14
    assert found["baseline: newest 50 contacts"] == 50
    assert found["contacts: phone search"] == 1  # one customer has that number
    assert all(rows > 0 for rows in found.values()), found
    assert all(c["p95_ms"] >= c["p50_ms"] > 0 for c in result["cases"])
