"""The ``superb`` command: thin typer wrappers over library functions.

Heavy modules (torch, zarr) are imported inside the commands, so ``superb --help`` and the listing
commands start instantly. Library code raises ``superb.errors.SuperbError``; ``main`` prints it as one
line and exits non-zero. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from superb.errors import ConfigError, SuperbError, disk_error

app = typer.Typer(
    name="superb",
    help="SUPERB downstream evaluation of self-supervised speech models, feature-cache-first.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _yaml_mapping(path: Path | None, what: str) -> dict[str, Any]:
    if path is None:
        return {}
    import yaml

    if not path.is_file():
        raise ConfigError(f"{what} {path}: file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path}: expected a mapping of option: value")
    return data


def _key_values(items: list[str], flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` items → a dict; values are YAML literals (``true``, ``2.5``, ``[a, b]``), never evaluated."""
    from superb.train.config import parse_literal

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} {item!r}: expected KEY=VALUE")
        out[key.strip()] = parse_literal(raw)
    return out


@app.command()
def extract(
    upstream: Annotated[str, typer.Option("-u", "--upstream", help="registered name or module:attr")],
    corpus: Annotated[str, typer.Option("--corpus", help="corpus name (see `superb corpora`)")],
    root: Annotated[Path, typer.Option("--root", help="the corpus folder in its official layout")],
    upstream_config: Annotated[Optional[Path], typer.Option("-g", "--upstream-config",
                                                            help="YAML of upstream options")] = None,
    splits: Annotated[Optional[str], typer.Option("--splits", help="comma-separated; default: all")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="default: stores/UPSTREAM")] = None,
    format: Annotated[str, typer.Option("--format", help="zarr or hdf5")] = "zarr",
    dtype: Annotated[str, typer.Option("--dtype", help="float16 or float32")] = "float16",
    layers: Annotated[str, typer.Option("--layers", help="all, or indices like 0,4,8")] = "all",
    ckpt: Annotated[Optional[Path], typer.Option("--ckpt", help="fairseq .pt, HF folder or state dict")] = None,
    random_init: Annotated[Optional[str], typer.Option("--random-init",
                                                       help="tiny, base or large: random weights (tests)")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda")] = "auto",
    batch_seconds: Annotated[float, typer.Option("--batch-seconds", help="padded audio per batch")] = 32.0,
    workers: Annotated[int, typer.Option("--workers", help="audio decoding threads")] = 2,
    test_root: Annotated[Optional[Path], typer.Option("--test-root",
                                                      help="speech_commands: the separate test set")] = None,
    corpus_option: Annotated[Optional[list[str]], typer.Option(
        "-c", "--corpus-option", help="KEY=VALUE corpus option, repeatable (voxceleb1: verification=true)")] = None,
    chunk_frames: Annotated[Optional[int], typer.Option("--chunk-frames", hidden=True)] = None,
    shard_frames: Annotated[Optional[int], typer.Option("--shard-frames", hidden=True)] = None,
    block_shards: Annotated[Optional[int], typer.Option("--block-shards", hidden=True)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Run UPSTREAM over a corpus once and store every requested layer (rerun to resume)."""
    from superb.distributed import context
    from superb.extract.extraction import ExtractRequest
    from superb.extract.extraction import extract as run
    from superb.registry import UPSTREAMS
    from superb.stores.base import open_store

    corpus_options = _key_values(corpus_option or [], "--corpus-option")
    if test_root is not None:
        corpus_options["test_root"] = test_root
    name = upstream.rsplit(":", 1)[-1] if ":" in upstream else UPSTREAMS.canonical(upstream)
    request = ExtractRequest(
        upstream=upstream, corpus=corpus, root=root, out=out or Path("stores") / name,
        upstream_options=_yaml_mapping(upstream_config, "--upstream-config"),
        corpus_options=corpus_options, ckpt=ckpt, random_init=random_init, seed=seed,
        splits=[s.strip() for s in splits.split(",") if s.strip()] if splits else None,
        format=format, dtype=dtype, layers=layers, device=device, batch_seconds=batch_seconds,
        workers=workers, chunk_frames=chunk_frames, shard_frames=shard_frames, block_shards=block_shards,
        progress=not quiet,
    )
    path = run(request)
    ctx = context()
    if not ctx.distributed:
        typer.echo(f"store complete: {path}")
    elif ctx.main:  # the others print nothing; under torchrun rank 0 may finish before the last process
        with open_store(path) as store:
            complete = all(done == total for done, total in store.completeness().values())
        typer.echo(f"store complete: {path}" if complete
                   else f"rank 0's blocks are written; {path} is complete once every process has finished")


@app.command()
def inspect(
    store: Annotated[Path, typer.Argument(help="a store (stores/UPSTREAM/CORPUS) or stores/UPSTREAM")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """What a store holds: upstream, checksum, layers, dims, splits, utterances, bytes, completeness."""
    from superb.errors import StoreError
    from superb.stores.base import find_stores, open_store
    from superb.stores.inspect import describe, render

    paths = find_stores(store)
    if not paths:
        raise StoreError(f"{store}: no feature store here")
    reports = []
    for path in paths:
        with open_store(path) as opened:
            reports.append(describe(opened))
    if as_json:
        import json

        typer.echo(json.dumps(reports if len(reports) > 1 else reports[0], indent=2))
    else:
        for report in reports:
            render(report)


@app.command()
def fit(
    task: Annotated[str, typer.Option("-d", "--task", "--downstream", help="task (see `superb tasks`)")],
    features: Annotated[Optional[Path], typer.Option("--features", help="stores/UPSTREAM (or one store)")] = None,
    upstream: Annotated[Optional[str], typer.Option("-u", "--upstream", help="on the fly: the upstream")] = None,
    root: Annotated[Optional[Path], typer.Option("--root", help="on the fly: the corpus folder")] = None,
    test_root: Annotated[Optional[Path], typer.Option("--test-root", help="speech_commands test set")] = None,
    ckpt: Annotated[Optional[Path], typer.Option("--ckpt", help="on the fly: upstream checkpoint")] = None,
    random_init: Annotated[Optional[str], typer.Option("--random-init", help="on the fly: tiny|base|large")] = None,
    upstream_config: Annotated[Optional[Path], typer.Option("-g", "--upstream-config")] = None,
    finetune: Annotated[bool, typer.Option("-f", "--finetune", help="train the upstream too")] = False,
    name: Annotated[Optional[str], typer.Option("-n", "--name", help="expdir result/downstream/NAME")] = None,
    expdir: Annotated[Optional[Path], typer.Option("-p", "--expdir")] = None,
    config: Annotated[Optional[Path], typer.Option("-c", "--config", help="default: the task's YAML")] = None,
    override: Annotated[Optional[str], typer.Option(
        "-o", "--override", help="config.optimizer.lr=1e-3,,config.runner.total_steps=2000")] = None,
    past_exp: Annotated[Optional[Path], typer.Option("-e", "--past-exp", help="resume from this ckpt/dir")] = None,
    auto_resume: Annotated[bool, typer.Option("-a", "--auto-resume", help="resume the expdir's run")] = False,
    init_ckpt: Annotated[Optional[Path], typer.Option("-i", "--init-ckpt", help="load weights only")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    layer: Annotated[Optional[int], typer.Option("-l", "--layer", help="use one hidden state only")] = None,
    fold: Annotated[Optional[int], typer.Option("--fold", help="er: the IEMOCAP session to test on")] = None,
    labels: Annotated[Optional[Path], typer.Option(
        "--labels", help="phone_*: the CPC phone label folder (converted_aligned_phones.txt, *_split.txt)")] = None,
    device: Annotated[str, typer.Option("--device")] = "auto",
    preload: Annotated[bool, typer.Option("--preload", help="hold the splits in RAM")] = False,
    workers: Annotated[Optional[int], typer.Option("--workers", help="data loader processes")] = None,
) -> None:
    """Train a downstream head from stored features (or on the fly with -u), resumable."""
    from superb.train.runner import FitArgs
    from superb.train.runner import fit as run

    args = FitArgs(
        task=task, features=str(features) if features else None, upstream=upstream,
        root=str(root) if root else None, test_root=str(test_root) if test_root else None,
        ckpt=str(ckpt) if ckpt else None, random_init=random_init,
        upstream_config=_yaml_mapping(upstream_config, "--upstream-config"), finetune=finetune, name=name,
        expdir=str(expdir) if expdir else None, config=str(config) if config else None, override=override,
        seed=seed, layer=layer, fold=fold, labels=str(labels.absolute()) if labels else None, device=device,
        preload=preload, workers=workers,
    )
    from superb.distributed import context

    out = run(args, past_exp=past_exp, auto_resume=auto_resume, init_ckpt=init_ckpt)
    if context().main:  # under torchrun the main process alone writes the results
        typer.echo((out / "results.json").read_text())


@app.command()
def qbe(
    features: Annotated[Path, typer.Option("--features", help="stores/UPSTREAM (or the quesst14 store itself)")],
    split: Annotated[str, typer.Option("-t", "--split", help="dev or test (the corpus's eval queries)")] = "dev",
    corpus: Annotated[str, typer.Option("--corpus", help="quesst14 or sws2013")] = "quesst14",
    name: Annotated[Optional[str], typer.Option("-n", "--name", help="expdir result/downstream/NAME")] = None,
    expdir: Annotated[Optional[Path], typer.Option("-p", "--expdir")] = None,
    layers: Annotated[str, typer.Option("--layers", help="all, best (the dev run's best), or indices like 0,6,12")]
    = "all",
    dist: Annotated[str, typer.Option("--dist", help="cosine_exp, cosine, cosine_neg_log, euclidean, cityblock")]
    = "cosine_exp",
    no_normalize: Annotated[bool, typer.Option("--no-normalize", help="skip per-dimension normalisation")] = False,
    no_minmax_norm: Annotated[bool, typer.Option("--no-minmax-norm", help="DTW on the raw distances (s3prl's default "
                                                 "scales each query frame's distances to [0, 1] per document)")]
    = False,
    groundtruth: Annotated[Optional[Path], typer.Option("--groundtruth", help="ground-truth folder (ECF, tlist, "
                                                        "RTTM); default: the corpus's own for the split")] = None,
    select_from: Annotated[Optional[Path], typer.Option("--select-from", help="the dev run whose best layer a "
                                                        "test run reports; default: the sibling NAME_dev")] = None,
    device: Annotated[str, typer.Option("--device", help="auto (CUDA when there is one), cpu or cuda")] = "auto",
) -> None:
    """Query-by-example by subsequence DTW, every stored layer in one run: official stdlist.xml per layer,
    scored (MTWV, ATWV, Cnxe) from the corpus's ground truth."""
    from superb.stores.base import open_store
    from superb.train.runner import find_task_store
    from superb.train.tasks.qbe.run import QbeRequest, run_qbe

    store = open_store(find_task_store(features, corpus))
    chosen: list[int] | str | None = None
    if layers.strip() in ("best",):
        chosen = "best"
    elif layers.strip() != "all":
        try:
            chosen = [int(k) for k in layers.replace(" ", "").split(",") if k]
        except ValueError:
            raise ConfigError(f"--layers {layers!r}: all, best, or comma-separated layer indices") from None
    prefix = "qbe" if corpus == "quesst14" else f"qbe_{corpus}"
    out = expdir or Path("result") / "downstream" / (name or f"{prefix}_{store.attrs['upstream']['name']}_{split}")
    summary = run_qbe(QbeRequest(store, split, out, chosen, dist, not no_normalize, not no_minmax_norm,
                                 groundtruth=groundtruth, select_from=select_from, device=device))
    for layer, found in summary["layers"].items():
        if "official" in found:
            figures = found["official"]
            typer.echo(f"layer {layer:>2}: MTWV {figures['mtwv']:.4f}  ATWV {figures['atwv']:.4f}  "
                       f"min Cnxe {figures['min_cnxe']:.4f}")
    if summary["best_layer"] is not None and split == "dev":
        typer.echo(f"best dev layer: {summary['best_layer']}")
    typer.echo(f"{len(summary['layers'])} layer(s) scored against {summary['documents']} documents: {out}")
    if summary["results"] is not None:
        typer.echo(json.dumps(summary["results"], indent=2))


@app.command()
def evaluate(
    past_exp: Annotated[Path, typer.Option(
        "-e", "--past-exp", help="a checkpoint, or an expdir (its dev-best; where a run keeps none, its last states)")],
    split: Annotated[str, typer.Option("-t", "--split", help="dev, test or train")] = "test",
    override: Annotated[Optional[str], typer.Option("-o", "--override")] = None,
    save_audio: Annotated[Optional[Path], typer.Option(
        "--save-audio", help="separation: write each mixture's estimates here (UTT_s1.wav, UTT_s2.wav)")] = None,
) -> None:
    """Test a checkpoint with the args and config it was trained with."""
    from superb.train.runner import evaluate as run

    typer.echo(json.dumps(run(past_exp, split, override, save_audio=save_audio), indent=2))


@app.command()
def sweep(
    task: Annotated[str, typer.Option("-d", "--task", "--downstream", help="task (see `superb tasks`)")],
    expdir: Annotated[Path, typer.Option("-p", "--expdir", help="one folder per head inside")],
    features: Annotated[Optional[Path], typer.Option("--features", help="stores/UPSTREAM (or one store)")] = None,
    upstream: Annotated[Optional[str], typer.Option("-u", "--upstream", help="on the fly: the upstream, run once "
                                                    "per batch for every head")] = None,
    root: Annotated[Optional[Path], typer.Option("--root", help="on the fly: the corpus folder")] = None,
    test_root: Annotated[Optional[Path], typer.Option("--test-root", help="as fit's")] = None,
    ckpt: Annotated[Optional[Path], typer.Option("--ckpt", help="on the fly: upstream checkpoint")] = None,
    random_init: Annotated[Optional[str], typer.Option("--random-init", help="on the fly: tiny|base|large")] = None,
    upstream_config: Annotated[Optional[Path], typer.Option("-g", "--upstream-config")] = None,
    lr: Annotated[Optional[str], typer.Option("--lr", help="learning rates, e.g. 1e-2,1e-3 (default: the config's)")]
    = None,
    seed: Annotated[str, typer.Option("--seed", help="seeds, e.g. 0,1,2")] = "0",
    layer: Annotated[str, typer.Option("--layer", help="all (the weighted sum) and/or layer indices, e.g. all,6")]
    = "all",
    config: Annotated[Optional[Path], typer.Option("-c", "--config", help="default: the task's YAML")] = None,
    override: Annotated[Optional[str], typer.Option("-o", "--override", help="as fit's, for every head")] = None,
    auto_resume: Annotated[bool, typer.Option("-a", "--auto-resume", help="resume every head")] = False,
    fold: Annotated[Optional[int], typer.Option("--fold", help="er: the IEMOCAP session to test on")] = None,
    labels: Annotated[Optional[Path], typer.Option("--labels", help="phone_*: the CPC phone label folder")] = None,
    device: Annotated[str, typer.Option("--device")] = "auto",
    preload: Annotated[bool, typer.Option("--preload", help="hold the splits in RAM")] = False,
    workers: Annotated[Optional[int], typer.Option("--workers", help="batch-building threads")] = None,
    halving: Annotated[Optional[int], typer.Option(
        "--halving", help="every this many steps (a multiple of eval_step), stop the worse half on dev")] = None,
    exact: Annotated[bool, typer.Option("--exact", help="each head's weighted sum on its own: bit for bit its fit's "
                                        "(default: one batched contraction, equal to float rounding)")] = False,
) -> None:
    """Train the grid of learning rates × seeds × layers in one pass over the store (a head per point, each as
    `superb fit` would write it), then name the best head on dev."""
    from superb.distributed import context
    from superb.train.sweep import SweepArgs, parse_values
    from superb.train.sweep import sweep as run

    args = SweepArgs(
        task=task, expdir=str(expdir), features=str(features) if features else None, upstream=upstream,
        root=str(root) if root else None, test_root=str(test_root) if test_root else None,
        ckpt=str(ckpt) if ckpt else None, random_init=random_init,
        upstream_config=_yaml_mapping(upstream_config, "--upstream-config"),
        lrs=parse_values(lr, "--lr", float) if lr else None,
        seeds=parse_values(seed, "--seed", int), layers=parse_values(layer, "--layer", int), override=override,
        config=str(config) if config else None, fold=fold, labels=str(labels.absolute()) if labels else None,
        device=device, preload=preload, workers=workers, halving=halving, exact=exact)
    summary = run(args, auto_resume=auto_resume)
    if context().main:
        metric = summary["metric"]
        for head in summary["heads"]:
            dev, test = head["dev"].get(metric), head["test"].get(metric)
            mark = " diverged" if head["diverged_at_step"] is not None else \
                f" stopped by halving at step {head['halted_at_step']}" if head["halted_at_step"] is not None else ""
            best = "  <- best dev" if head["name"] == summary["best"] else ""
            typer.echo(f"{head['name']:<32} dev {metric} {_figure(dev)}  test {metric} {_figure(test)}{mark}{best}")


@app.command()
def bench(
    upstream: Annotated[str, typer.Option("-u", "--upstream", help="the upstream to evaluate")],
    data_root: Annotated[Path, typer.Option("--data-root", help="the folder holding the corpora (any depth)")],
    expdir: Annotated[Path, typer.Option("-p", "--expdir", help="stores, runs, bench.json and the report")] = Path(
        "bench"),
    ckpt: Annotated[Optional[Path], typer.Option("--ckpt", help="upstream checkpoint")] = None,
    random_init: Annotated[Optional[str], typer.Option("--random-init", help="tiny|base|large (no weights)")] = None,
    upstream_config: Annotated[Optional[Path], typer.Option("-g", "--upstream-config")] = None,
    tasks: Annotated[Optional[str], typer.Option("--tasks", help="e.g. ks,sid (default: every task)")] = None,
    roots: Annotated[Optional[list[str]], typer.Option("--root", help="CORPUS=PATH (or labels=PATH): this folder, "
                                                       "not the one found; repeatable")] = None,
    dtype: Annotated[str, typer.Option("--dtype", help="store dtype")] = "float16",
    lr: Annotated[Optional[str], typer.Option("--lr", help="learning rates swept for every task (default: each "
                                              "task's config)")] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", help="a smoke run: stop every task after this "
                                                     "many steps (recorded in bench.json)", min=1)] = None,
    protocol: Annotated[Optional[str], typer.Option("--protocol", help="superb (checkpoints chosen on dev) or "
                                                    "s3prl (s3prl's choices, e.g. SD/ASV on test); default: each "
                                                    "task's config")] = None,
    reference: Annotated[Optional[Path], typer.Option("--reference", help="a CSV of published rows (report.csv's "
                                                      "columns) shown below ours")] = None,
    device: Annotated[str, typer.Option("--device")] = "auto",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the plan, write nothing")] = False,
) -> None:
    """Evaluate one upstream on every task whose corpus is under --data-root: extract each corpus once, sweep each
    task, write the SUPERB table; a rerun carries on where it stopped."""
    from superb.bench.plan import forward_rate, make_plan, render
    from superb.bench.run import BenchArgs, run_plan
    from superb.extract.extraction import resolve_device
    from superb.registry import UPSTREAMS
    from superb.train.sweep import parse_values

    from superb.distributed import context

    if context().distributed:
        raise ConfigError("superb bench runs in one process (each stage would run on every rank); start it "
                          "without torchrun")
    from superb.extract.extraction import DTYPES

    if dtype not in DTYPES:
        raise ConfigError(f"--dtype {dtype!r}: choose {' or '.join(DTYPES)}")
    protocols = {"superb": "dev", "s3prl": "s3prl"}
    if protocol is not None and protocol not in protocols:
        raise ConfigError(f"--protocol {protocol!r}: superb or s3prl")
    options = _yaml_mapping(upstream_config, "--upstream-config")
    # built once: the plan measures it, every extraction uses it (a RANDOM WEIGHTS warning is said here, once)
    model = UPSTREAMS.get(upstream).create(ckpt=ckpt, options=options, random_init=random_init, seed=0)
    given = {name: Path(str(folder)).absolute() for name, folder in _key_values(roots or [], "--root").items()}
    plan = make_plan(data_root, given, tasks.split(",") if tasks else None, model.spec.to_dict())
    plan.forward_rate = forward_rate(model, resolve_device(device))
    typer.echo(render(plan, upstream, dtype, expdir))
    if dry_run:
        return
    typer.echo(run_plan(plan, BenchArgs(upstream=upstream, expdir=expdir, ckpt=ckpt, random_init=random_init,
                                        upstream_options=options, dtype=dtype, max_steps=max_steps, device=device,
                                        protocol=protocols.get(protocol or ""), reference=reference,
                                        lrs=parse_values(lr, "--lr", float) if lr else None), model))


def _figure(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "–"


@app.command()
def report(
    result_dirs: Annotated[list[Path], typer.Argument(help="expdirs, or folders holding them")],
    out: Annotated[Optional[Path], typer.Option("--out", help="where report.md/csv/json and PNGs go")] = None,
) -> None:
    """The SUPERB table (best-dev checkpoint's test metric per task) as Markdown/CSV/JSON, plus plots."""
    from superb.train.report import main_report

    typer.echo(main_report(result_dirs, out))


@app.command()
def tasks() -> None:
    """List the registered tasks."""
    _list("TASKS")


def _list(registry_name: str) -> None:
    from superb import registry

    entries = list(getattr(registry, registry_name).entries())
    width = max((len(entry.name) for entry in entries), default=0)
    for entry in entries:
        typer.echo(f"{entry.name:<{width}}  {entry.summary}")


@app.command()
def upstreams() -> None:
    """List the registered upstreams."""
    _list("UPSTREAMS")


@app.command()
def corpora() -> None:
    """List the registered corpora."""
    _list("CORPORA")


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line and a non-zero exit for user errors; Ctrl-C says how to resume."""
    import warnings

    from superb.launcher import follow_launcher

    follow_launcher()  # under torchrun: first thing, so a launcher killed while we start up is noticed
    warnings.formatwarning = _one_line_warning  # e.g. RANDOM WEIGHTS: said once, plainly
    try:
        app(args=argv, standalone_mode=False)
    except SuperbError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:  # a full or read-only disk where no command named its output folder
        error = disk_error(exc)
        if error is None:
            raise
        typer.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted: rerun the same command to carry on where it stopped", err=True)
        sys.exit(130)
    except Exception as exc:
        # click's own outcomes (usage errors, --help, no arguments), recognised by shape because
        # typer may vendor click under another module name
        if type(exc).__name__ == "Abort":
            typer.echo("aborted: rerun the same command to carry on where it stopped", err=True)
            sys.exit(130)
        if hasattr(exc, "exit_code"):
            if hasattr(exc, "show"):
                exc.show()
            sys.exit(exc.exit_code)
        raise

if __name__ == "__main__":
    main()
