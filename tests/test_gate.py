"""The promotion gate: paired bootstrap intervals and the verdict's reasons."""

from __future__ import annotations

from eval.answers import Outcome
from eval.gate import bootstrap, compare


def outcomes(method: str, contained: list[bool], refused_unanswerable: list[bool],
             refused_answerable: list[bool] | None = None) -> list[Outcome]:
    rows = []
    wrong = refused_answerable or [False] * len(contained)
    for i, (c, r) in enumerate(zip(contained, wrong, strict=True)):
        rows.append(Outcome(f"q{i}", method, "in_scope", "", c, contained=c, f1=float(c),
                            refused=r))
    for i, r in enumerate(refused_unanswerable):
        rows.append(Outcome(f"q{i}", method, "unanswerable", "", r, refused=r))
    return rows


def test_bootstrap_interval_holds_the_mean_and_narrows_with_more_cases() -> None:
    small = bootstrap([1.0, 0.0] * 10)
    large = bootstrap([1.0, 0.0] * 500)
    assert small[0] < 0.5 < small[1] and large[0] < 0.5 < large[1]
    assert large[1] - large[0] < small[1] - small[0]
    assert bootstrap([0.0] * 30) == (0.0, 0.0)


def test_clearly_better_candidate_passes() -> None:
    serving = outcomes("s", [False] * 40, [True] * 20)
    candidate = outcomes("c", [True] * 25 + [False] * 15, [True] * 20)
    verdict = compare(candidate, serving)
    assert verdict.passed, verdict.reasons
    assert next(d for d in verdict.deltas if d.metric == "containment").low > 0


def test_noise_is_not_an_improvement() -> None:
    serving = outcomes("s", [True, False] * 20, [True] * 20)
    candidate = outcomes("c", [False, True] * 20 + [], [True] * 20)  # same rate, other cases
    candidate[0].contained = True  # one case better: noise
    verdict = compare(candidate, serving)
    assert not verdict.passed
    assert "containment is not better beyond noise" in verdict.reasons[0]


def test_better_target_but_worse_refusals_is_refused() -> None:
    serving = outcomes("s", [False] * 40, [True] * 40)
    candidate = outcomes("c", [True] * 30 + [False] * 10, [False] * 30 + [True] * 10)
    verdict = compare(candidate, serving)
    assert not verdict.passed
    assert any(r.startswith("unanswerable_refused is worse") for r in verdict.reasons)


def test_more_wrong_refusals_count_as_worse() -> None:
    serving = outcomes("s", [False] * 40, [True] * 10)
    candidate = outcomes("c", [True] * 20 + [False] * 20, [True] * 10,
                         refused_answerable=[False] * 20 + [True] * 20)
    verdict = compare(candidate, serving)
    assert any(r.startswith("wrongly_refused is worse") for r in verdict.reasons)
