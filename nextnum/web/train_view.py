"""What the Train tab shows of a run: its progress line and curves, and the tab's updates while it trains."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .views import accuracy_table, duration

if TYPE_CHECKING:
    import pandas as pd

    from .train_runs import Run, TrainingSlot


def progress_line(p: dict[str, Any]) -> str:
    """One line of a training progress report."""
    val = "-" if p.get("val_seq_acc") is None else f"{p['val_seq_acc']:.1%}"
    return (f"step {p['step']}/{p['steps']} · loss {p['loss']:.3f} · token acc {p['token_acc']:.1%} · "
            f"val sequence acc {val} · up to {p['max_len']} digits · {duration(p['elapsed_s'])} elapsed, "
            f"ETA {duration(p['eta_s'])}")


# the curves' names in the Train tab's legends, by progress key
CURVE_NAMES = {"loss": "loss", "token_acc": "train accuracy per digit", "val_seq_acc": "validation accuracy per number"}
CURVE_COLOURS = {"loss": "blue", "token_acc": "blue", "val_seq_acc": "orange"}


def curve_plot(*keys: str) -> dict[str, Any]:
    """A Train-tab LinePlot's label and colours for the curves `keys` (progress keys): each curve named in the
    label, in the colour it is drawn in. Not a legend: Gradio 6.31's plot legend shows its title but none of
    its entries."""
    return dict(label=" · ".join(f"{CURVE_NAMES[k]} in {CURVE_COLOURS[k]}" for k in keys),
                color_map={CURVE_NAMES[k]: CURVE_COLOURS[k] for k in keys}, colors_in_legend=[])


def curves(rows: list[dict[str, Any]], keys: tuple[str, ...] = ("loss", "token_acc", "val_seq_acc")) -> pd.DataFrame:
    """Long-form DataFrame (step, value, metric) of the given progress keys, for a gr.LinePlot; metric is
    the curve's name as the legend shows it (CURVE_NAMES)."""
    import pandas as pd
    recs = [{"step": r["step"], "value": r[k], "metric": CURVE_NAMES.get(k, k)}
            for r in rows for k in keys if r.get(k) is not None]
    return pd.DataFrame(recs, columns=["step", "value", "metric"])


@dataclass
class TabUpdate:
    """What the Train tab shows after one event of a run; None leaves that part as it is."""
    message: str | None = None
    history: list[dict[str, Any]] | None = None  # progress rows, for the curves
    samples: list[tuple[np.ndarray, str]] | None = None
    table: list[list[Any]] | None = None  # the final evaluation by length
    ended: bool = False  # the run is over: the checkpoint menus list its folder now


def follow(slot: TrainingSlot, run: Run, progress: Callable[[float, str], None],
           every_s: float = 0.5) -> Iterator[TabUpdate]:
    """The Train tab's updates while `run` trains (at most one per every_s, besides sample pictures),
    then its outcome. Heartbeats (all None) keep the page's connection alive; when the page goes away
    (this generator is closed) the run is stopped rather than trained for nobody."""
    last = 0.0
    try:
        for ev in run.follow():
            if ev is None or ev.get("phase") == "evaluating":
                yield TabUpdate("Evaluating the best checkpoint…" if ev else None)
            elif "step" in ev:
                progress(min(ev["progress"], 1.0), f"ETA {duration(ev['eta_s'])}")
                if ev.get("samples") or time.perf_counter() - last > every_s:
                    last = time.perf_counter()
                    yield TabUpdate(progress_line(ev), history=run.history, samples=ev.get("samples"))
            elif ev.get("samples"):
                yield TabUpdate("Saving…", samples=ev["samples"])
    finally:
        if not run.done.is_set():
            slot.stop(run.token)
    ev = run.evaluation or {}
    rows, _ = accuracy_table(ev) if "by_length" in ev else ([], "")
    where = f"saved as **checkpoints/{run.checkpoint}** (choose it in the checkpoint menu)" if run.checkpoint \
        else "nothing was saved"
    msg = f"Training **{run.status}**: {where}." + (f" Error: `{run.error}`" if run.error else "")
    if ev.get("source"):
        msg += f" Evaluated on {ev['source']}."
    corr = run.corrections_report
    if corr and corr.get("held_out_after") is not None:
        before = corr["held_out_before"]
        msg += (f" On the {corr['held_out']} held-out corrections: {before:.0%} before, "
                f"**{corr['held_out_after']:.0%} after**.")
    yield TabUpdate(msg, history=run.history, table=rows, ended=True)
