"""Every field of every recorded gateway body, given a value of another type (a list where a
string was, a number where a list was, null...): the adapter returns its events, or a
``PayloadError`` (a 400), never another exception. One was a 500 for the webhook and for every
other webhook stored in its batch; a gateway that resends on a 500 sent it again and again.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway_bridge import AuthError, PayloadError, adapter_for

FIXTURES = Path(__file__).parent / "fixtures" / "gateways"
OTHERS: list[Any] = [["x"], {"a": 1}, 7, 1.5, True, None, "x", ""]


def _paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, inner in items:
        yield from _paths(inner, (*at, key))


def _with(value: Any, at: tuple[Any, ...], new: Any) -> Any:
    if not at:
        return new
    changed = copy.deepcopy(value)
    inner = changed
    for key in at[:-1]:
        inner = inner[key]
    inner[at[-1]] = new
    return changed


@pytest.mark.parametrize("provider", ["evolution", "waha", "cloud"])
def test_no_field_of_another_type_makes_an_adapter_raise(provider: str) -> None:
    adapter = adapter_for(provider)
    fixtures = sorted((FIXTURES / provider).glob("*.json"))
    assert len(fixtures) >= 10
    raised = []
    for fixture in fixtures:
        body = json.loads(fixture.read_text())
        for at in _paths(body):
            for other in OTHERS:
                try:
                    adapter.parse(json.dumps(_with(body, at, other)).encode(), None)
                except (PayloadError, AuthError):
                    pass
                except Exception as exc:  # noqa: BLE001 - what the test is looking for
                    raised.append(f"{fixture.name} {list(at)} = {other!r}: {exc!r}")
    assert not raised, f"{len(raised)} bodies raised, such as:\n" + "\n".join(raised[:10])
