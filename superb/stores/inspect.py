"""``superb inspect``: a store's provenance, geometry and completeness, as data and as text."""

from __future__ import annotations

from typing import Any

from superb.stores.base import FeatureStore

STATES = {  # describe()'s "state" as render() says it
    "empty": "[yellow]empty: no split extracted yet (rerun extract)[/yellow]",
    "complete": "[green]complete[/green]",
    "incomplete": "[yellow]incomplete (rerun extract)[/yellow]",
}


def describe(store: FeatureStore) -> dict[str, Any]:
    attrs = store.attrs
    upstream = attrs["upstream"]
    splits = {}
    for name, (done, total) in store.completeness().items():
        view = store.split(name)
        splits[name] = {"utterances": total, "done": done, "frames": int(view.offsets[-1]),
                        "seconds": round(sum(r["duration"] for r in view.records), 3)}
    total = sum(s["utterances"] for s in splits.values())
    done = sum(s["done"] for s in splits.values())
    return {
        "path": str(store.path),
        "format": store.format,
        "upstream": upstream.get("name"),
        "ckpt": upstream.get("ckpt"),
        "ckpt_sha256": upstream.get("ckpt_sha256"),
        "random_init": upstream.get("random_init"),
        "upstream_config": upstream.get("config"),
        "corpus": attrs["corpus"],
        "frame_rate": attrs["frame_rate"],
        "num_layers": attrs["num_layers"],
        "layers": attrs["layers"],
        "dim": attrs["dim"],
        "dtype": attrs["dtype"],
        "layout": attrs.get("layout"),
        "splits": splits,
        "bytes": store.nbytes(),
        "state": "empty" if not splits else "complete" if done == total else "incomplete",
        "complete": bool(splits) and done == total,
        "completeness": f"{done}/{total}",
        "superb_version": attrs.get("superb_version"),
        "created": attrs.get("created"),
    }


def render(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{report['path']}[/bold] ({report['format']}, superb {report['superb_version']}, "
                  f"created {report['created']})")
    weights = report["ckpt_sha256"]
    if weights == "random-init":
        weights = f"[bold red]RANDOM WEIGHTS[/bold red] ({report['random_init']})"
    console.print(f"upstream  {report['upstream']}  ckpt {report['ckpt']}  sha256 {weights}")
    if report["upstream_config"]:
        console.print(f"config    {report['upstream_config']}")
    corpus = report["corpus"]
    console.print(f"corpus    {corpus['name']} (reader v{corpus['version']}) at {corpus['root']}")
    options = {k: v for k, v in (corpus.get("options") or {}).items() if v is not None}
    if options:
        console.print(f"options   {options}")
    console.print(f"features  {len(report['layers'])} of {report['num_layers']} layers {report['layers']} × "
                  f"{report['dim']} dims, {report['dtype']}, {report['frame_rate']:g} frames/s")
    table = Table("split", "utterances", "done", "frames", "hours")
    for name, split in report["splits"].items():
        table.add_row(name, str(split["utterances"]), str(split["done"]), str(split["frames"]),
                      f"{split['seconds'] / 3600:.3f}")
    console.print(table)
    state = STATES[report["state"]]
    console.print(f"{report['bytes'] / 2**20:.1f} MiB on disk, {report['completeness']} utterances: {state}")
