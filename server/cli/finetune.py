"""``atende finetune``: curate, train, choose a checkpoint and publish the local model's adapter."""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy import select

from finetune.curate import Pair, Turn, curate
from finetune.dataset import save
from server.cli.common import console, fail, json_option, sessions, write_out
from server.db import dumps
from server.schema import Contact, Message
from server.settings import get_settings

app = typer.Typer(help="Fine-tuning: curate training data from real conversations.",
                  no_args_is_help=True)


@app.command("curate")
def curate_cmd(
    out: Path = typer.Option(..., help="Folder to write the dataset (and its card) into."),
    collection: str = typer.Option(None, help="Knowledge base whose passages go with each "
                                   "question; default the configured one."),
    passages: int = typer.Option(4, help="Passages retrieved per question (0 = none)."),
    add_set: list[Path] = typer.Option([], help="Also add an eval set's cases as pairs, shown "
                                       "the chunks holding their passages (repeatable; a corpus "
                                       "folder with splits.json adds each of its businesses): "
                                       "answerable ones, and out-of-scope ones as refusals."),
    add_split: str = typer.Option("train", help="Which split of --add-set to add; its other "
                                  "splits are held out of training."),
    json_out: Path = json_option("Also write the report here."),
) -> None:
    """Customer turns paired with human agents' replies: no assistant or bot text, personal data
    replaced, near-duplicates and low-quality pairs dropped, with a report of why."""
    settings = get_settings()
    with sessions()() as s:
        names = [n for n in s.scalars(select(Contact.name)) if n]
        rows = s.execute(select(Message.conversation_id, Message.author, Message.text)
                         .where(Message.status.not_in(["failed"]))
                         .order_by(Message.conversation_id, Message.id)).all()
    conversations = [(str(conv), [Turn(author, text) for _, author, text in msgs])
                     for conv, msgs in groupby(rows, key=lambda r: r[0])]
    extra: list[Pair] = []
    held_out: list[str] = []
    if add_set:
        from finetune.evalsets import gather

        try:
            extra, held_out = gather(add_set, add_split)
        except (ValueError, OSError) as exc:
            fail(str(exc))
    retrieve = None
    if passages:
        from server.runtime import StoreBusy, open_kb

        try:
            kb = open_kb(settings)
        except (StoreBusy, ValueError) as exc:
            fail(str(exc))
        name = collection or settings.kb_collection

        def retrieve(q: str) -> list[tuple[str, str]]:
            return [(p.doc, p.text)
                    for p in kb.search(name, q, top_k=passages, how=settings.search())]

    with console.status("Curating..."):
        pairs, report = curate(conversations, names=names, retrieve=retrieve, extra=extra,
                               held_out=held_out)
    digest = save(pairs, report, out, collection=collection or settings.kb_collection,
                  add_set=[str(p) for p in add_set] or None, add_split=add_split)
    table = Table("outcome", "pairs")
    table.add_row("kept", str(report.kept))
    for why, n in report.dropped.most_common():
        table.add_row(f"dropped: {why}", str(n))
    for who, n in report.excluded_messages.items():
        table.add_row(f"messages by {who} (never used)", str(n))
    console.print(table)
    console.print(f"Saved to {out} (sha256 {digest[:12]}).")
    if json_out:
        write_out(json_out, (out / "curation.json").read_text())


@app.command("train")
def train_cmd(
    config: Path = typer.Argument(..., help="YAML config (see finetune/configs/)."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key: --set epochs=2."),
    name: str = typer.Option(None, help="Name of the model version to register; default the "
                             "run folder's name."),
    budget: float = typer.Option(0.05, help="Share of held-out answerable questions the "
                                 "refusal threshold may wrongly refuse."),
    json_out: Path = json_option("Also write the run's figures here."),
    calibrate_on: list[Path] = typer.Option([], "--calibrate-on", help="Calibrate the refusal "
                                            "threshold on these eval sets (repeatable; a corpus "
                                            "folder adds its businesses): the questions held out "
                                            "of training, or a set's dev split where training "
                                            "saw none of it, asked as serving asks them "
                                            "(retrieved passages, evidence floors first, one "
                                            "budget for both); default: the held-out pairs with "
                                            "their own passages."),
    prepare_only: bool = typer.Option(False, "--prepare-only", help="Only write the run "
                                      "folder's examples, to train elsewhere (a GPU machine: "
                                      "`python -m finetune.fit RUN/config.yaml`)."),
) -> None:
    """LoRA fine-tuning (TRL + PEFT) of the local GGUF: train (resuming from the last
    checkpoint), export the adapter as GGUF, calibrate refusals, register a candidate version.

    A run trained elsewhere: copy its checkpoints/ (and fit.json, heldout.json) into the run
    folder and run this again; `--set export_step=N` exports checkpoint N instead of the last."""
    from finetune import runs
    from finetune.config import load
    from server.services import model_versions

    try:
        cfg = load(config, set_)
    except (ValueError, OSError) as exc:
        fail(f"{config}: {exc}")
    if not (cfg.dataset / "dataset_info.json").is_file():
        fail(f"{cfg.dataset} is not a curated dataset (run `atende finetune curate` first)")
    from eval.evalset import load as load_set
    from finetune.evalsets import sets_of

    on_sets = [d for p in calibrate_on for d in sets_of(p)]
    for d in on_sets:  # before an hour of training, not after it
        try:
            load_set(d)
        except (ValueError, OSError) as exc:
            fail(f"--calibrate-on: {exc}")
    if prepare_only:
        from finetune.train import prepare

        with console.status("Preparing examples..."):
            try:
                prepare(cfg)
            except ValueError as exc:
                fail(str(exc))
        console.print(f"Prepared {cfg.out}. Train it with `python -m finetune.fit "
                      f"{cfg.out / 'config.yaml'} --set base_gguf=PATH --heldout`, copy the run "
                      "folder back here and run this command again without --prepare-only.")
        return
    version = name or cfg.out.name
    with sessions()() as s:
        try:
            model_versions.get(s, version)
        except LookupError:
            pass
        else:
            fail(f"a model version named {version!r} already exists; pass --name")
    try:
        result = runs.train_with_progress(cfg, console)
    except ValueError as exc:
        fail(str(exc))
    try:
        settings = get_settings()  # evidence and search as serving has them
        cal = runs.calibrate_run(result, console, budget, on_sets,
                                  top_k=cfg.passages, sentences=cfg.sentences,
                                  terms=cfg.focus_terms, ranked_with=cfg.focus_embedder,
                                  rule=settings.evidence(cfg.passages),
                                  search=settings.search())
    except (ValueError, OSError) as exc:
        fail(f"calibration: {exc}")
    try:
        model_versions.register(sessions(), version, base=Path(result.metrics["base"]),
                                adapter=result.adapter_gguf, root=get_settings().data_dir,
                                refusal_threshold=cal.threshold, config=cfg.model_dump(mode="json"),
                                data_sha256=result.data_sha256,
                                metrics={"train": result.metrics,
                                         "calibration": {**cal.__dict__, "on": [
                                             str(p) for p in calibrate_on] or "held-out pairs"}})
    except ValueError as exc:
        fail(f"{exc}; pass --name")
    table = Table("figure", "value")
    for key in ("examples", "refusals", "steps", "train_loss", "tokens_per_second", "seconds"):
        table.add_row(key, str(result.metrics[key]))
    table.add_row("refusal threshold", f"{cal.threshold:.4f}")
    table.add_row("held-out answerable wrongly refused", f"{cal.wrongly_refused:.1%}")
    table.add_row("held-out unanswerable refused", f"{cal.unanswerable_refused:.1%}")
    if cal.wrongly_refused > budget:
        console.print(f"[yellow]The evidence floors alone refuse {cal.wrongly_refused:.1%} of the "
                      "held-out answerable questions, over the budget: the model never refuses."
                      "[/]")
    console.print(table)
    console.print(f"Registered candidate [bold]{version}[/] ({result.adapter_gguf}). Next: "
                  f"`atende models compare {version} --set DIR`.")
    if json_out:
        write_out(json_out, dumps({"version": version, "train": result.metrics,
                                        "calibration": cal.__dict__,
                                        "data_sha256": result.data_sha256}, indent=2))


@app.command("checkpoints")
def checkpoints_cmd(
    config: Path = typer.Argument(..., help="The run's YAML config."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key."),
    budget: float = typer.Option(0.05, help="Wrong-refusal budget of each threshold."),
    json_out: Path = json_option("Also write the table here."),
) -> None:
    """Every checkpoint of a run on its held-out pairs, as serving would answer them, to choose
    one to export (`atende finetune train CONFIG --set export_step=N`). Uses RUN/heldout.json
    when the run made it for these checkpoints (`python -m finetune.fit --heldout`, fast on a
    GPU); else asks here."""
    from finetune import fit, heldout
    from finetune.config import load
    from models.bundled import bundled_gguf

    try:
        cfg = load(config, set_)
    except (ValueError, OSError) as exc:
        fail(f"{config}: {exc}")
    if not (cfg.out / fit.HELD_OUT).is_file():
        fail(f"{cfg.out} is not a prepared run (`atende finetune train CONFIG --prepare-only`)")
    items = fit.read_examples(cfg.out / fit.HELD_OUT)
    asked = heldout.saved(cfg.out, items)
    if asked is None:
        with console.status("Asking every checkpoint the held-out pairs..."):
            base = fit.base_model_dir(cfg.base_gguf or bundled_gguf(Path("data/models")))
            try:
                asked = heldout.checkpoints(cfg.out, base, items)
            except ValueError as exc:
                fail(str(exc))
    rows = {name: heldout.summary(a, items, budget) for name, a in asked.items()}
    table = Table("checkpoint", "threshold", "containment", "wrongly refused",
                  "unanswerable refused", title=f"{cfg.out.name}: {len(items)} held-out examples")
    for name, r in rows.items():
        table.add_row(name, f"{r['threshold']:.3f}", f"{r['containment']:.3f}",
                      f"{r['wrongly_refused']:.1%}", f"{r['unanswerable_refused']:.1%}")
    console.print(table)
    if json_out:
        write_out(json_out, dumps(rows, indent=2))


@app.command("publish")
def publish_cmd(
    version: str = typer.Argument(..., help="Registered model version."),
    to: Path = typer.Option(..., help="Folder to write (e.g. models/adapters/faquad-v4)."),
) -> None:
    """Copy a version's adapter with its config, data hash, threshold and figures into a folder
    the product serves on new databases (the bundled default adapter)."""
    import shutil

    from server.services import model_versions

    with sessions()() as s:
        try:
            v = model_versions.get(s, version)
        except LookupError as exc:
            fail(str(exc))
    if not v.adapter:
        fail(f"{version} has no adapter")
    to.mkdir(parents=True, exist_ok=True)
    shutil.copy(model_versions.located(v.adapter, get_settings().data_dir), to / "adapter.gguf")
    (to / "version.json").write_text(dumps({
        "name": v.name, "base": Path(v.base).name, "refusal_threshold": v.refusal_threshold,
        "data_sha256": v.data_sha256, "config": v.config, "metrics": v.metrics,
        "gate": v.gate}, ensure_ascii=False, indent=2))
    console.print(f"Published {version} to {to}.")
