"""NextNum's web app: draw, film or upload a number, see it read and where the model looked; train new models.

    python app.py [--checkpoint PATH] [--port N] [--share] [--data DIR]

Layout and wiring only: the work happens in nextnum/ (nextnum/ui.py holds the app's helpers).
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported


def _limit_malloc_arenas(n: int = 2) -> None:
    """Ask glibc for at most n malloc arenas (as MALLOC_ARENA_MAX=n would), before any thread starts.

    By default each of the server's worker threads may get an arena of its own, and freed memory stays
    in them: the app's resident memory grew by ~160 MB under 8 concurrent users (bench/memory.py)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").mallopt(-8, n)  # -8 = M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        pass


if __name__ == "__main__" and "MALLOC_ARENA_MAX" not in os.environ:
    _limit_malloc_arenas()

import gradio as gr  # noqa: E402
from gradio import processing_utils  # noqa: E402

from nextnum import ui  # noqa: E402
from nextnum.checkpoint import CheckpointError  # noqa: E402
from nextnum.config import Config  # noqa: E402
from nextnum.inputs import ImageError  # noqa: E402

ROOT = Path(__file__).resolve().parent
EXAMPLES = sorted(str(p) for p in (ROOT / "examples").glob("*.png"))
CONFIGS = ui.training_configs(ROOT / "configs")  # the Train tab's choices
FRESH = "fresh weights"  # the Train tab's "Start from" when no checkpoint is chosen
HEAVY_EVERY = 4  # webcam: attention maps and the per-digit gallery on every 4th frame only
STREAM_SECONDS = float(os.environ.get("NEXTNUM_STREAM_SECONDS", "30"))  # a webcam session holds a worker this long
STREAMS = int(os.environ.get("NEXTNUM_STREAMS", "4"))  # webcam sessions served at once; more wait their turn
CACHE_SECONDS = int(os.environ.get("NEXTNUM_CACHE_SECONDS", "3600"))  # uploads and returned pictures older than
# this are deleted, looked for this often (Blocks(delete_cache=...))
# Gradio keeps ~200 KB per session (a copy of the page's config, and the State values) for the newest this
# many sessions; its default of 10,000 would let API callers, each call a new session, take 2 GB
SESSIONS = int(os.environ.get("NEXTNUM_SESSIONS", "1000"))
log = logging.getLogger("nextnum.app")


def _save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """Gradio's save_pil_to_cache, but written under a temporary name and renamed into place.

    Gradio names a returned image by a hash of its bytes and rewrites the file in place, so when two
    requests return the same picture at once, one can be served the file while the other truncates it
    ("Too little data for declared Content-Length"; 17 of 240 requests under 8 concurrent clients)."""
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = folder / f"{name}.{format}"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return str(path.resolve())


processing_utils.save_pil_to_cache = _save_pil_to_cache  # gr.Image and gr.Gallery look it up at call time


def build(ckpts: ui.Checkpoints, slot: ui.TrainingSlot, data_note: str) -> gr.Blocks:
    live0 = ckpts.default()
    try:
        cfg0 = ckpts.predictor(live0).config if live0 else None
    except CheckpointError as e:
        log.error("%s", e)
        cfg0 = None
    layers, heads = ui.layer_head_choices(cfg0)

    def predictor(name):
        try:
            return ckpts.predictor(name)
        except CheckpointError as e:
            log.warning("could not load the checkpoint %r: %s", name, e)
            raise gr.Error(str(e), print_exception=False) from None  # logged above

    def read(image, live, layer, head):
        p = predictor(live)
        try:
            pred = None if image is None else p.predict(ui.for_reading(image), explain=True)
        except ImageError as e:
            log.info("refused an image: %s", e)
            raise gr.Error(str(e), print_exception=False) from None  # logged above
        if pred is not None:
            log.info("read %r (%.2f) with %s in %.0f ms", pred.text, pred.confidence, live, pred.timings_ms["total"])
        return ui.reading_views(pred, live, layer, head)

    def read_frame(frame, state, live, smooth):
        if frame is None:
            return None, "", ui.reading_html(None, "no camera frame yet"), "", gr.skip(), state
        try:
            st, pred, text, img, stats = ui.read_frame(predictor(live), ui.for_reading(frame), state, smooth,
                                                       HEAVY_EVERY)
        except ImageError as e:
            log.info("refused a webcam frame: %s", e)
            raise gr.Error(str(e), print_exception=False) from None  # logged above
        log.debug("frame %d read %r in %.0f ms", st["n"], pred.text, pred.timings_ms["total"])
        gallery = ui.attention_gallery(pred) if pred.attention is not None else gr.skip()
        return img, text, ui.reading_html(pred), stats, gallery, st

    def choose(name, live):
        """Switch this session's model; a checkpoint that fails to load leaves the previous one live."""
        try:
            p = ckpts.predictor(name)
        except CheckpointError as e:
            log.warning("could not load the checkpoint %r (kept %r): %s", name, live, e)
            gr.Warning(f"Could not load {name}: {e}")
            md, rows, conf = card(live)
            kept = f"kept {live}" if live else "no model is live"
            return live, gr.update(value=live), f"**Could not load {name}; {kept}.** {e}\n\n{md}", rows, conf, \
                *[gr.skip()] * 4
        lc, hc = ui.layer_head_choices(p.config)
        return (name, gr.update(value=name), *ui.model_card(p, name),
                *[gr.update(choices=lc, value="rollout"), gr.update(choices=hc, value="mean")] * 2)

    def card(name):
        try:
            return ui.model_card(ckpts.predictor(name) if name else None, name)
        except CheckpointError as e:
            return f"**{e}**", [], {}

    def start_choices():
        """The Train tab's "Start from" menu: fresh weights, or any checkpoint listed now."""
        return gr.update(choices=[FRESH] + ckpts.names())

    def config_knobs(name):
        c = Config.load(CONFIGS[name])
        return c.train.steps, c.train.lr, c.train.batch, c.data.max_len, c.model.dim

    def train(config_name, steps, lr, batch, max_len, dim, name, start_from=FRESH, progress=gr.Progress()):
        def outs(msg, rows=None, samples=None, table=None, dropdown=None, token=None):  # None: leave unchanged
            plots = (None, None) if rows is None else \
                (ui.curves(rows, ("loss",)), ui.curves(rows, ("token_acc", "val_seq_acc")))
            starts = None if dropdown is None else start_choices()
            return tuple(gr.skip() if v is None else v
                         for v in (msg, *plots, samples, table, dropdown, token, starts))

        name = (name or "").strip() or time.strftime("run-%Y%m%d-%H%M%S")
        try:
            cfg = ui.build_config(Config.load(CONFIGS[config_name]), steps, lr, batch, max_len, dim)
            init = ckpts.resolve(start_from) if start_from and start_from != FRESH else None
            run = slot.start(cfg, name, init)
        except (ui.Busy, ValueError, KeyError, FileNotFoundError, CheckpointError) as e:
            log.info("training not started: %s", e)
            yield outs(f"**{e}**" if isinstance(e, ui.Busy) else f"**Cannot start:** {e}")
            return
        frm = f", from the weights of {start_from}" if run.init else ""
        yield outs(f"Started **{name}** ({config_name}, {cfg.train.steps} steps{frm})…", token=run.token)
        last = 0.0
        try:
            for ev in run.follow():
                if ev is None or ev.get("phase") == "evaluating":
                    msg = "Evaluating the best checkpoint…" if ev else None
                    yield outs(msg)
                elif "step" in ev:
                    progress(min(ev["progress"], 1.0), desc=f"ETA {ui.format_seconds(ev['eta_s'])}")
                    if ev.get("samples") or time.perf_counter() - last > 0.5:
                        last = time.perf_counter()
                        yield outs(ui.progress_line(ev), rows=run.history, samples=ev.get("samples"))
                elif ev.get("samples"):
                    yield outs("Saving…", samples=ev["samples"])
        finally:
            if not run.done.is_set():  # the page went away mid-run: stop rather than train for nobody
                slot.stop(run.token)
        ev = run.evaluation or {}
        rows, _ = ui.accuracy_table(ev) if "by_length" in ev else ([], "")
        where = f"saved as **checkpoints/{run.checkpoint}** (choose it in the checkpoint menu)" if run.checkpoint \
            else "nothing was saved"
        msg = f"Training **{run.status}**: {where}." + (f" Error: `{run.error}`" if run.error else "")
        if ev.get("source"):
            msg += f" Evaluated on {ev['source']}."
        yield outs(msg, rows=run.history, table=rows, dropdown=gr.update(choices=ckpts.names()))

    def stop(token):
        return "Stopping… the best checkpoint so far will be kept." if slot.stop(token) else \
            "Nothing of yours is training."

    with gr.Blocks(title="NextNum", delete_cache=(CACHE_SECONDS, CACHE_SECONDS)) as demo:
        live = gr.State(live0)
        gr.Markdown("# NextNum\nReads handwritten numbers of 1–5 digits with a tiny Vision Transformer, "
                    "and shows where it looked for each digit.")
        with gr.Row():
            ckpt = gr.Dropdown(ckpts.names(), value=live0, label="Model (checkpoints/)", elem_id="ckpt", scale=4,
                               allow_custom_value=True)  # names are checked by ckpts.resolve, not by the choices
            refresh = gr.Button("↻ Refresh list", scale=1, size="sm")

        def results(prefix):
            with gr.Row():
                text = gr.Textbox(label="Digits", elem_id=f"{prefix}_digits", scale=1, interactive=False)
                html_ = gr.HTML(ui.reading_html(None), elem_id=f"{prefix}_reading")
            per = gr.Gallery(label="Where it looked for each digit", columns=4, fit_columns=False, height="auto",
                             format="jpeg", object_fit="contain")
            with gr.Row():
                comb = gr.Image(label="All digits, one colour each", format="jpeg", height=240)
                with gr.Column():
                    enc = gr.Image(label="Encoder attention: what each patch gathers", format="jpeg", height=170)
                    with gr.Row():
                        layer = gr.Dropdown(layers, value="rollout", label="Encoder layer")
                        head = gr.Dropdown(heads, value="mean", label="Head")
            with gr.Accordion("Preprocessing stages and details", open=False):
                stages = gr.Gallery(label="Preprocessing stages", columns=6, height=200, format="jpeg",
                                    object_fit="contain")
                info = gr.JSON(label="Details")
            return [text, html_, per, comb, enc, stages, info], layer, head

        with gr.Tab("Draw", id="draw"):
            sketch = gr.Sketchpad(image_mode="L", type="numpy", canvas_size=(900, 300), layers=False, transforms=(),
                                  brush=gr.Brush(default_size=14, colors=["#000000"], color_mode="fixed"),
                                  label="Write a number (1–5 digits)", elem_id="sketch")
            with gr.Row():
                read_btn = gr.Button("Read", variant="primary", elem_id="read")
                clear_btn = gr.Button("Clear")
            draw_out, d_layer, d_head = results("draw")
            examples = gr.Examples(EXAMPLES, inputs=sketch, label="Examples: MNIST test digits drawn large",
                                   cache_examples=False)
        with gr.Tab("Webcam", id="webcam"):
            gr.Markdown("Hold a number written in thick dark ink inside the orange box. Frames are read "
                        f"as they come (about 10 a second); the attention maps refresh every {HEAVY_EVERY} frames.")
            with gr.Row():
                cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera", elem_id="cam",
                               webcam_options=gr.WebcamOptions(mirror=False, constraints={
                                   "video": {"width": {"ideal": 640}, "height": {"ideal": 480}}}))
                cam_view = gr.Image(label="Reading", format="jpeg", elem_id="cam_view")
            with gr.Row():
                cam_text = gr.Textbox(label="Digits", elem_id="cam_digits", interactive=False, scale=1)
                cam_html = gr.HTML(elem_id="cam_reading")
                smooth = gr.Checkbox(True, label="Smooth over the last 5 frames", scale=1)
            cam_stats = gr.Markdown(elem_id="cam_stats")
            cam_per = gr.Gallery(label="Where it looked for each digit", columns=4, fit_columns=False, height="auto",
                                 format="jpeg", object_fit="contain")
            cam_state = gr.State(None, time_to_live=600)
        with gr.Tab("Upload", id="upload"):
            upload = gr.File(label="An image file (PNG, JPEG, …)", file_types=["image"], type="filepath",
                             elem_id="upload")
            up_out, u_layer, u_head = results("upload")
        with gr.Tab("Train", id="train"):
            gr.Markdown(data_note)
            with gr.Row():
                config = gr.Dropdown(list(CONFIGS), value="smoke" if "smoke" in CONFIGS else None, label="Config")
                start_from = gr.Dropdown([FRESH] + ckpts.names(), value=FRESH, label="Start from",
                                         info="fresh weights, or fine-tune a checkpoint of the same model shape",
                                         allow_custom_value=True)  # checked by ckpts.resolve, as for the menu above
                run_name = gr.Textbox(label="Checkpoint name", placeholder="run-<date>-<time>", elem_id="run_name")
            with gr.Row():
                k_steps = gr.Number(label="Steps", precision=0, minimum=1, maximum=50_000)
                k_lr = gr.Number(label="Learning rate", minimum=0)
                k_batch = gr.Number(label="Batch", precision=0, minimum=1, maximum=512)
                k_len = gr.Slider(1, 5, step=1, label="Max digits per canvas")
                k_dim = gr.Number(label="Model width (multiple of heads)", precision=0)
            with gr.Row():
                start = gr.Button("Start training", variant="primary", elem_id="train_start")
                stop_btn = gr.Button("Stop", variant="stop", elem_id="train_stop")
            status = gr.Markdown("Not started.", elem_id="train_status")
            with gr.Row():
                loss_plot = gr.LinePlot(x="step", y="value", color="metric", label="Training loss", height=300)
                acc_plot = gr.LinePlot(x="step", y="value", color="metric", label="Accuracy", height=300,
                                       y_lim=[0, 1])
            samples = gr.Gallery(label="Sample predictions on fresh canvases", columns=6, height=180, format="png",
                                 object_fit="contain")
            table = gr.Dataframe(headers=["digits", "canvases", "sequence accuracy"], label="Evaluation by length")
            token = gr.State(None)
        with gr.Tab("Model", id="model"):
            card_md = gr.Markdown()
            acc = gr.Dataframe(headers=["digits", "canvases", "sequence accuracy"], label="Accuracy by length")
            with gr.Accordion("Config (config.json)", open=False):
                cfg_json = gr.JSON(label="Config")

        # reading: live as the sketch changes, on the button, on upload; the selectors redraw the encoder view
        d_in, u_in = [sketch, live, d_layer, d_head], [upload, live, u_layer, u_head]
        quiet = dict(trigger_mode="always_last", show_progress="hidden")
        sketch.change(read, d_in, draw_out, api_name=False, **quiet)
        read_btn.click(read, d_in, draw_out, api_name="read_sketch", **quiet)
        upload.change(read, u_in, up_out, api_name="predict", **quiet)
        for sel in (d_layer, d_head):
            sel.change(read, d_in, draw_out, api_name=False, **quiet)
        for sel in (u_layer, u_head):
            sel.change(read, u_in, up_out, api_name=False, **quiet)
        examples.load_input_event.then(read, d_in, draw_out, api_name=False, show_progress="hidden")  # no .change here
        clear_btn.click(lambda: (None, "", ui.reading_html(None), [], None, None, [], {}), None, [sketch] + draw_out,
                        api_name=False)
        cam_outs = [cam_view, cam_text, cam_html, cam_stats, cam_per, cam_state]
        cam.stream(read_frame, [cam, cam_state, live, smooth], cam_outs, stream_every=0.1,
                   time_limit=STREAM_SECONDS, concurrency_limit=STREAMS, api_name="predict_frame",
                   show_progress="hidden")
        # gradio_client cannot call a .stream() endpoint: the same function behind a hidden button
        gr.Button(visible=False).click(read_frame, [cam, cam_state, live, smooth], cam_outs,
                                       api_name="predict_frame_once", show_progress="hidden")
        card_outs = [card_md, acc, cfg_json]
        selectors = [d_layer, d_head, u_layer, u_head]
        ckpt.input(choose, [ckpt, live], [live, ckpt] + card_outs + selectors, api_name="select_checkpoint")
        refresh.click(lambda: gr.update(choices=ckpts.names()), None, ckpt, api_name="list_checkpoints")
        demo.load(lambda: gr.update(choices=ckpts.names()), None, ckpt, api_name=False)
        demo.load(start_choices, None, start_from, api_name=False)
        start_from.focus(start_choices, None, start_from, api_name=False)
        demo.load(card, live, card_outs, api_name=False)
        config.change(config_knobs, config, [k_steps, k_lr, k_batch, k_len, k_dim], api_name=False)
        demo.load(config_knobs, config, [k_steps, k_lr, k_batch, k_len, k_dim], api_name=False)
        start.click(train, [config, k_steps, k_lr, k_batch, k_len, k_dim, run_name, start_from],
                    [status, loss_plot, acc_plot, samples, table, ckpt, token, start_from], api_name="train",
                    concurrency_limit=2, concurrency_id="train", show_progress_on=[status])
        stop_btn.click(stop, token, status, api_name="stop_training", concurrency_limit=None)
    return demo


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="NextNum web app")
    ap.add_argument("--checkpoint", help="checkpoint folder to start with (default: checkpoints/nextnum)")
    ap.add_argument("--checkpoints-dir", default=os.environ.get("NEXTNUM_CHECKPOINTS", str(ROOT / "checkpoints")),
                    help="folder of checkpoints the app lists and trains into (env NEXTNUM_CHECKPOINTS)")
    ap.add_argument("--data", default=os.environ.get("NEXTNUM_DATA", str(ROOT.parent / "shared" / "data")),
                    help="MNIST root for the Train tab (env NEXTNUM_DATA); without it the built-in sample is used")
    ap.add_argument("--port", type=int, default=None, help="port (default: GRADIO_SERVER_PORT or 7860)")
    ap.add_argument("--share", action="store_true", help="also make a temporary public gradio.live link")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("NEXTNUM_THREADS", "1")),
                    help="torch threads; 1 is fastest for this tiny model, especially beside a training run")
    args = ap.parse_args(argv)
    logging.basicConfig(level=os.environ.get("NEXTNUM_LOG", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own startup checks
    import torch
    torch.set_num_threads(max(1, args.threads))
    root = Path(args.checkpoints_dir)
    root.mkdir(parents=True, exist_ok=True)
    ckpts = ui.Checkpoints(root, args.checkpoint)
    note, load = ui.training_data(args.data, force_fixture=os.environ.get("NEXTNUM_TRAIN_DATA") == "fixture")
    demo = build(ckpts, ui.TrainingSlot(root, load), note)
    demo.queue(max_size=20, default_concurrency_limit=2)
    # no server_name: Gradio takes GRADIO_SERVER_NAME from the environment (127.0.0.1 when unset)
    demo.launch(server_port=args.port, share=args.share, max_file_size="5mb", prevent_thread_lock=True,
                ssr_mode=False, state_session_capacity=SESSIONS)
    if args.share and not demo.share_url:
        log.warning("--share: no public link could be made (no internet, or the share service is unreachable); "
                    "the app is still running locally at %s", demo.local_url)
    demo.block_thread()


if __name__ == "__main__":
    main()
