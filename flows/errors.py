"""What is wrong with a flow, by path: ``nodes.menu_principal.options[2].next``, so an editor
can point at the field, and an API answer can say which one to fix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class FlowError(ValueError):
    """A flow that cannot be read (its shape) or must not run (its graph, its variables);
    ``problems`` holds every one found, each with the path of the bad part."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))

    @property
    def paths(self) -> list[str]:
        return [p.path for p in self.problems]
