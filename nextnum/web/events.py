"""What each of the app's events does: Gradio handlers over the checkpoints, the Predictor and the training slot."""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from ..checkpoint import CheckpointError
from ..config import Config
from ..corrections import Corrections
from ..inputs import ImageError, from_data_url
from . import feedback, train_runs, train_view, views, webcam
from .models import Checkpoints
from .heavy import heavy

if TYPE_CHECKING:
    from ..predictor import Predictor

log = logging.getLogger("nextnum.app")
FRESH = "fresh weights"  # the Train tab's "Start from" when no checkpoint is chosen
CORRECTIONS_RATE = (20, 600)  # in public: corrections one client may save in this many seconds


def _refused(what: str, e: Exception) -> gr.Error:
    log.info("refused %s: %s", what, e)
    return gr.Error(str(e), print_exception=False)  # logged above


class Handlers:
    """The app's event handlers, bound to its checkpoints, training slot and Train-tab configs."""

    def __init__(self, ckpts: Checkpoints, slot: train_runs.TrainingSlot | None = None,
                 configs: dict[str, Path] | None = None, heavy_every: int = 4, corrections: Corrections | None = None,
                 public: bool = False) -> None:
        """ckpts: what gives the live model's Predictor (predictor(name)); reading needs nothing else, so the
        training slot, the Train tab's configs and the corrections store may be left out by whoever only reads.
        heavy_every: the webcam draws the maps on every heavy_every-th frame. public: a deployment anyone may
        reach, where the corrections people saved are not shown, zipped or scored, and nothing is trained."""
        self.ckpts, self.slot, self.configs, self.heavy_every = ckpts, slot, configs or {}, heavy_every
        self.corrections = corrections
        self.public = public
        self.zips = feedback.ZipFolder()
        self.rate = feedback.RateLimit(*CORRECTIONS_RATE) if public else None

    def predictor(self, name: str | None) -> Predictor:
        """The live checkpoint's Predictor; a gr.Error the page shows when it cannot be loaded."""
        try:
            return self.ckpts.predictor(name)
        except CheckpointError as e:
            log.warning("could not load the checkpoint %r: %s", name, e)
            raise gr.Error(str(e), print_exception=False) from None  # logged above

    # ------------------------------------------------------------ reading

    def read(self, image: Any, live: str | None, layer: str | None, head: str | None,
             stages_shown: bool | None = False, stages_asked: bool | None = False) -> tuple:
        """The Draw and Upload tabs: read the image as every reader does (Predictor.predict), with the pictures;
        the stage pictures only while the page's accordion shows them or an API caller asks for them."""
        p = self.predictor(live)
        try:
            with heavy():
                pred = None if image is None else p.predict(image, explain=True)
        except ImageError as e:
            raise _refused("an image", e) from None
        if pred is not None:
            log.info("read %r (%.2f) with %s in %.0f ms", pred.text, pred.confidence, live, pred.timings_ms["total"])
        return views.reading_views(pred, live, layer, head, stages=bool(stages_shown or stages_asked))

    def read_pad(self, drawing: str | None, live: str | None, layer: str | None, head: str | None,
                 stages_shown: bool | None = False, stages_asked: bool | None = False) -> tuple:
        """The Draw tab and /read_sketch: the drawing as a PNG data URL ("" once cleared), read as read()
        reads; the drawing comes last, kept (as its data URL: a few KB a session, where the decoded drawing
        took 1 MB) for the selectors, the stages and a correction. A cleared pad empties the results. Only a
        data URL is read: any other value is refused alike."""
        if drawing is None or drawing == "":
            return (*views.empty_views(), None)
        try:
            with heavy():
                image = from_data_url(drawing)
        except ImageError as e:
            raise _refused("a drawing", e) from None
        return (*self.read(image, live, layer, head, stages_shown, stages_asked), drawing)

    def stages(self, image: Any, live: str | None) -> tuple[list, bool]:
        """The stages accordion opened: its pictures of the image shown now (its preprocessing only: the
        reading and its maps are already on the page), and of every reading from now on."""
        try:
            with heavy():
                stages = {} if image is None else self.predictor(live).stages(image)
        except ImageError:  # the reading itself already said why
            stages = {}
        return views.stage_pictures(stages), True

    def read_frame(self, frame: Any, state: dict | None, live: str | None, smooth: bool) -> tuple:
        """One webcam frame: annotated frame, digits, reading HTML, stats, per-digit gallery, state."""
        if frame is None:
            return None, "", views.reading_html(None, "no camera frame yet"), "", gr.skip(), state
        p = self.predictor(live)
        try:
            with heavy():
                st, pred, text, img, stats = webcam.read_frame(p, frame, state, smooth, self.heavy_every)
        except ImageError as e:
            raise _refused("a webcam frame", e) from None
        log.debug("frame %d read %r in %.0f ms", st["n"], pred.text, pred.timings_ms["total"])
        gallery = views.attention_gallery(pred) if pred.attention is not None else gr.skip()
        return img, text, views.reading_html(pred), stats, gallery, st

    # ------------------------------------------------------------ corrections

    def correct(self, image: Any, text: str, request: gr.Request = None) -> str:
        """Save the image a reading was made from with the right number (Draw, Upload, webcam, /correct); in
        public at most CORRECTIONS_RATE a client."""
        if self.rate is not None and not self.rate.allow(feedback.RateLimit.client(request)):
            n, s = CORRECTIONS_RATE
            raise gr.Error(f"thank you: that is {n} corrections in {s // 60} minutes, the most one visitor may save "
                           "here; try again later", print_exception=False)
        with heavy():
            return feedback.save(self.corrections, image, text)

    def corrections_overview(self) -> tuple[str, list]:
        """The Train tab's corrections panel: how many, and the newest (in public, how many alone)."""
        return feedback.overview(self.corrections, n=0 if self.public else 12)

    def _private(self, what: str) -> None:
        if self.public:
            raise gr.Error(f"{what} is off on this public deployment: the corrections stay with whoever runs it",
                           print_exception=False)

    def corrections_zip(self) -> str:
        """All corrections as one zip file, for the download button (not in public)."""
        self._private("Downloading the corrections")
        return self.zips.write(self.corrections)

    def corrections_accuracy(self, live: str | None) -> str:
        """The live model's accuracy on the corrections (not in public)."""
        self._private("Scoring the corrections")
        p = self.predictor(live)
        with heavy():
            return feedback.accuracy(p, live, self.corrections)

    # ------------------------------------------------------------ checkpoints

    def names(self) -> dict:
        """The checkpoint menu's choices, as listed now."""
        return gr.update(choices=self.ckpts.names())

    def start_choices(self) -> dict:
        """The Train tab's "Start from" menu: fresh weights, or any checkpoint listed now."""
        return gr.update(choices=[FRESH] + self.ckpts.names())

    def card(self, name: str | None) -> tuple:
        """The Model tab: card, accuracy rows and config of a checkpoint (its error as the card if it fails)."""
        try:
            return views.model_card(self.ckpts.predictor(name) if name else None, name)
        except CheckpointError as e:
            return f"**{e}**", [], {}

    def choose(self, name: str, live: str | None) -> tuple:
        """Switch this session's model; a checkpoint that fails to load leaves the previous one live.
        Returns the live name, the menu, the model card (3) and the four encoder selectors."""
        try:
            p = self.ckpts.predictor(name)
        except CheckpointError as e:
            log.warning("could not load the checkpoint %r (kept %r): %s", name, live, e)
            gr.Warning(f"Could not load {name}: {e}")
            md, rows, conf = self.card(live)
            kept = f"kept {live}" if live else "no model is live"
            return live, gr.update(value=live), f"**Could not load {name}; {kept}.** {e}\n\n{md}", rows, conf, \
                *[gr.skip()] * 4
        lc, hc = views.layer_head_choices(p.config)
        return (name, gr.update(value=name), *views.model_card(p, name),
                *[gr.update(choices=lc, value="rollout"), gr.update(choices=hc, value="mean")] * 2)

    # ------------------------------------------------------------ training

    def config_knobs(self, name: str) -> tuple:
        """The Train tab's knobs as a config sets them: steps, lr, batch, max digits, width."""
        c = Config.load(self.configs[name])
        return c.train.steps, c.train.lr, c.train.batch, c.data.max_len, c.model.dim

    def _outs(self, u: train_view.TabUpdate, token: str | None = None) -> tuple:
        """A TabUpdate as the Train tab's outputs: status, loss plot, accuracy plot, samples, table,
        checkpoint menu, run token, start-from menu (gr.skip() where nothing changed)."""
        plots = (None, None) if u.history is None else \
            (train_view.curves(u.history, ("loss",)), train_view.curves(u.history, ("token_acc", "val_seq_acc")))
        menus = (self.names(), self.start_choices()) if u.ended else (None, None)
        return tuple(gr.skip() if v is None else v
                     for v in (u.message, *plots, u.samples, u.table, menus[0], token, menus[1]))

    def train(self, config_name: str, steps: float, lr: float, batch: float, max_len: float, dim: float,
              name: str, start_from: str = FRESH, with_corrections: bool = False,
              progress: gr.Progress = gr.Progress()) -> Iterator[tuple]:
        """Start a run from the Train tab's settings (with_corrections: mix the saved corrections into
        every batch), then stream its progress and outcome."""
        name = (name or "").strip() or time.strftime("run-%Y%m%d-%H%M%S")
        if self.public:
            yield self._outs(train_view.TabUpdate("**Training is off on this public deployment.** Run NextNum "
                                                "yourself (`python app.py`) to train models."))
            return
        try:
            cfg = train_runs.build_config(Config.load(self.configs[config_name]), steps, lr, batch, max_len, dim)
            init = self.ckpts.resolve(start_from) if start_from and start_from != FRESH else None
            if with_corrections and not self.corrections.split()[0]:
                raise ValueError("there are no corrections to train on yet: save some under a reading first")
            run = self.slot.start(cfg, name, init, self.corrections.root if with_corrections else None)
        except (train_runs.Busy, ValueError, KeyError, FileNotFoundError, CheckpointError) as e:
            log.info("training not started: %s", e)
            yield self._outs(train_view.TabUpdate(f"**{e}**" if isinstance(e, train_runs.Busy) else f"**Cannot start:** {e}"))
            return
        frm = f", from the weights of {start_from}" if run.init else ""
        yield self._outs(train_view.TabUpdate(f"Started **{name}** ({config_name}, {cfg.train.steps} steps{frm})…"),
                         token=run.token)
        updates = train_view.follow(self.slot, run, lambda p, desc: progress(p, desc=desc))
        try:
            for u in updates:
                yield self._outs(u)
        finally:  # the page went away: closing follow() stops the run
            updates.close()

    def stop(self, token: str | None) -> str:
        """Stop this page's run (the token its start returned); anyone else's is left alone."""
        return "Stopping… the best checkpoint so far will be kept." if self.slot.stop(token) else \
            "Nothing of yours is training."
