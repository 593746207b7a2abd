"""NextNum's web app: draw, film or upload a number, see it read and where the model looked; train new models.

    python app.py [--checkpoint PATH] [--port N] [--share] [--data DIR]

Layout and event wiring only: one builder per tab. What the events do is in nextnum/web/events.py;
starting the server (options, process settings, launch) in nextnum/web/server.py.
"""
from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

from nextnum.web import server  # noqa: E402 (imports nothing that starts threads)

if __name__ == "__main__":
    server.limit_malloc_arenas()  # before any thread starts

import gradio as gr  # noqa: E402

from nextnum.checkpoint import CheckpointError  # noqa: E402
from nextnum.config import ModelConfig  # noqa: E402
from nextnum.corrections import Corrections  # noqa: E402
from nextnum.web import gradio_fixes, page, sketchpad, views  # noqa: E402
from nextnum.web.models import Checkpoints  # noqa: E402
from nextnum.web.inline import InlineGallery, InlineImage  # noqa: E402
from nextnum.web.events import FRESH, Handlers, log  # noqa: E402
from nextnum.web.settings import Settings  # noqa: E402
from nextnum.web.train_runs import TrainingSlot, training_configs  # noqa: E402
from nextnum.web.train_view import curve_plot  # noqa: E402
from nextnum.web.webcam import GUIDE_ROI  # noqa: E402

ROOT = Path(__file__).resolve().parent
EXAMPLES = sorted(str(p) for p in (ROOT / "examples").glob("*.png"))
CONFIGS = training_configs(ROOT / "configs")  # the Train tab's choices
HEAVY_EVERY = 4  # webcam: attention maps and the per-digit gallery on every 4th frame only
# webcam: the page sends a frame this often (s); the server reads the newest one whenever it is free, so a
# short interval costs nothing when reading is slower, and shows more readings when it is faster
STREAM_EVERY = 0.05
QUIET = dict(trigger_mode="always_last", show_progress="hidden")
TABLE = ["digits", "canvases", "sequence accuracy"]
MAX_DIGITS = ModelConfig().max_digits  # the most a reading has: one map each

gradio_fixes.install()


def header(ckpts: Checkpoints, live0: str | None) -> SimpleNamespace:
    """The title, one line of what NextNum does, and the model menu, in one row: the reading tabs start
    high enough that a reading and its maps fit one screen under them. The page's CSS rides along."""
    with gr.Row(elem_id="top"):
        gr.HTML(page.TITLE, head=page.head(), elem_id="title", scale=3, min_width=300, padding=False)
        ckpt = gr.Dropdown(ckpts.names(), value=live0, label="Model (checkpoints/)", elem_id="ckpt", scale=1,
                           min_width=200, allow_custom_value=True)  # names are checked by ckpts.resolve
        refresh = gr.Button("↻ Refresh list", size="sm", elem_id="ckpt_refresh", scale=0, min_width=110)
    return SimpleNamespace(ckpt=ckpt, refresh=refresh)


def correction_row(prefix: str) -> SimpleNamespace:
    """A field for the right number and a button that saves it with the image just read."""
    with gr.Row(equal_height=True, elem_classes="nn-fix"):
        digits = gr.Textbox(label="Read wrong? The right number", placeholder="e.g. 4072", max_length=5, scale=2,
                            min_width=150, elem_id=f"{prefix}_fix")
        save = gr.Button("Save correction", scale=1, min_width=110, size="md", elem_id=f"{prefix}_fix_save")
    note = gr.Markdown(label="Correction note", show_label=False, elem_id=f"{prefix}_fix_note")
    return SimpleNamespace(digits=digits, save=save, note=note)


def digit_maps(prefix: str, columns: int) -> gr.Gallery:
    """Each digit's map, `columns` to a row; the page's CSS gives each the maps' own width:height
    (views.DIGITS_BOX) rather than a square. A numeric height: with "auto" Gradio keeps a gallery at least
    450 px high on wide windows."""
    rows = -(-MAX_DIGITS // columns)
    return InlineGallery(label="Where it looked for each digit", columns=columns, fit_columns=False,
                         height=page.maps_height(columns, rows), object_fit="contain",
                         elem_id=f"{prefix}_maps", elem_classes="nn-maps", allow_preview=False)


def reading_panel(prefix: str, columns: int = 3) -> SimpleNamespace:
    """The reading beside the input: the digits, each one's confidence, each one's map, the correction field.
    views.reading_views' first three outputs."""
    with gr.Row(elem_classes="nn-digits"):
        text = gr.Textbox(label="Digits", elem_id=f"{prefix}_digits", scale=0, min_width=110, interactive=False)
        html_ = gr.HTML(views.reading_html(None, empty=views.EMPTY[prefix]), label="Reading card", show_label=False,
                        elem_id=f"{prefix}_reading", scale=4, min_width=200)
    per = digit_maps(prefix, columns)
    fix = correction_row(prefix)
    return SimpleNamespace(text=text, html=html_, per=per, fix=fix)


def more_views(panel: SimpleNamespace, layers: list[str], heads: list[str]) -> SimpleNamespace:
    """Under the input and its reading: the combined map, the encoder's view with its selectors, the
    preprocessing stages; with `panel`, every output of views.reading_views in order."""
    with gr.Row():
        comb = InlineImage(label="All digits, one colour each", height=240)
        with gr.Column():
            enc = InlineImage(label="Encoder attention: what each patch gathers", height=170)
            with gr.Row():
                layer = gr.Dropdown(layers, value="rollout", label="Encoder layer")
                head = gr.Dropdown(heads, value="mean", label="Head")
    with gr.Accordion("Preprocessing stages and details", open=False) as acc:
        stages = InlineGallery(label="Preprocessing stages", columns=6, height=200, object_fit="contain")
        info = gr.JSON(label="Details")
        # API callers ask for the stage pictures with this parameter; in the page it stays off
        asked = gr.Checkbox(False, label="stages", visible=False)
    shown = gr.State(False)  # the page's stages accordion: True while open
    return SimpleNamespace(outs=[panel.text, panel.html, panel.per, comb, enc, stages, info], layer=layer, head=head,
                           fix=panel.fix, acc=acc, shown=shown, asked=asked)


def wire_stages(ev: Handlers, image: gr.components.Component, out: SimpleNamespace, live: gr.State) -> None:
    """The stage pictures are drawn only while their accordion is open."""
    out.acc.expand(ev.stages, [image, live], [out.outs[5], out.shown], api_name=False, show_progress="hidden")
    out.acc.collapse(lambda: False, None, out.shown, api_name=False, queue=False)


def draw_tab(ev: Handlers, live: gr.State, layers: list[str], heads: list[str]) -> SimpleNamespace:
    """The pad and its examples on the left, the reading and each digit's map on the right (stacked on a
    phone); the other views under both."""
    with gr.Tab("Draw", id="draw"):
        with gr.Row(elem_classes="nn-main"):
            with gr.Column(scale=5, min_width=320, elem_classes="nn-input"):
                pad = sketchpad.sketchpad("sketch", retry_id="read")
                read_btn = gr.Button("Read again", size="sm", elem_id="read")
                example = gr.Image(type="filepath", visible="hidden", elem_id="sketch_example")  # shown on the pad
                gr.Examples(EXAMPLES, inputs=example, label="Examples: MNIST test digits drawn large",
                            cache_examples=False, elem_id="sketch_examples", examples_per_page=len(EXAMPLES))
            with gr.Column(scale=4, min_width=300):
                panel = reading_panel("draw")
        out = more_views(panel, layers, heads)
        image = gr.State(None, time_to_live=600)  # the drawing last read: for the stages and a correction
    reading = [pad, live, out.layer, out.head, out.shown, out.asked]
    # each stroke, Undo and Clear; API clients send the same data URL to /read_sketch
    pad.change(ev.read_pad, reading, out.outs + [image], api_name="read_sketch", **QUIET)
    read_btn.click(ev.read_pad, reading, out.outs + [image], api_name=False, **QUIET)
    example.change(None, example, None, js=sketchpad.show_example_js("sketch"), api_name=False, queue=False)
    for sel in (out.layer, out.head):  # read from the pad, so that a blank pad shows the Draw tab's own message
        sel.change(ev.read_pad, reading[:-1], out.outs + [image], api_name=False, **QUIET)
    wire_stages(ev, image, out, live)
    out.fix.save.click(ev.correct, [image, out.fix.digits], out.fix.note, api_name=False)
    return out


def webcam_tab(ev: Handlers, live: gr.State, settings: Settings) -> SimpleNamespace:
    with gr.Tab("Webcam", id="webcam"):
        gr.Markdown(f"**Click to Access Webcam, then Record** (●) under the picture: it reads for up to "
                    f"{settings.stream_seconds:.0f} s, then stops; Record again for more. Hold a number written in thick dark "
                    f"ink inside the orange box. Frames are read as they come (up to {1 / STREAM_EVERY:.0f} a "
                    f"second); the attention maps refresh every {HEAVY_EVERY} frames.", elem_id="cam_help")
        with gr.Row():
            cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera", elem_id="cam",
                           webcam_options=gr.WebcamOptions(mirror=False, constraints={
                               "video": {"width": {"ideal": 640}, "height": {"ideal": 480}}}))
            view = InlineImage(label="Reading", elem_id="cam_view")
        # the guide box over the live preview, and the stream stopped in the page at its limit (page.js)
        gr.HTML("", js_on_load=page.webcam_js(GUIDE_ROI, settings.stream_seconds), elem_id="cam_guide", padding=False,
                apply_default_css=False)
        with gr.Row():
            text = gr.Textbox(label="Digits", elem_id="cam_digits", interactive=False, scale=1)
            html_ = gr.HTML(label="Reading card", show_label=False, elem_id="cam_reading")
            smooth = gr.Checkbox(True, label="Smooth over the last 5 frames", scale=1)
        stats = gr.Markdown(label="Webcam stats", show_label=False, elem_id="cam_stats")
        fix = correction_row("cam")
        per = digit_maps("cam", MAX_DIGITS)
        state = gr.State(None, time_to_live=600)
        api_read = gr.Button(visible=False)  # inside the tab: anything else beside the tabs splits their bar
    inputs, outs = [cam, state, live, smooth], [view, text, html_, stats, per, state]
    cam.stream(ev.read_frame, inputs, outs, stream_every=STREAM_EVERY, time_limit=settings.stream_seconds,
               concurrency_limit=settings.streams, api_name="predict_frame", show_progress="hidden")
    # gradio_client cannot call a .stream() endpoint: the same function behind a hidden button
    api_read.click(ev.read_frame, inputs, outs, api_name="predict_frame_once", show_progress="hidden")
    fix.save.click(ev.correct, [state, fix.digits], fix.note, api_name=False)  # the frame last read
    return SimpleNamespace(fix=fix)


def upload_tab(ev: Handlers, live: gr.State, layers: list[str], heads: list[str]) -> SimpleNamespace:
    with gr.Tab("Upload", id="upload"):
        with gr.Row(elem_classes="nn-main"):
            with gr.Column(scale=5, min_width=320, elem_classes="nn-input"):
                upload = gr.File(label="An image file (PNG, JPEG, …)", file_types=["image"], type="filepath",
                                 elem_id="upload")
            with gr.Column(scale=4, min_width=300):
                panel = reading_panel("upload")
        out = more_views(panel, layers, heads)
    upload.change(ev.read, [upload, live, out.layer, out.head, out.shown, out.asked], out.outs, api_name="predict",
                  **QUIET)
    for sel in (out.layer, out.head):
        sel.change(ev.read, [upload, live, out.layer, out.head, out.shown], out.outs, api_name=False, **QUIET)
    wire_stages(ev, upload, out, live)
    out.fix.save.click(ev.correct, [upload, out.fix.digits], out.fix.note, api_name="correct")  # (image file, digits)
    return out


def train_tab(ev: Handlers, ckpts: Checkpoints, data_note: str, live: gr.State) -> SimpleNamespace:
    with gr.Tab("Train", id="train"):
        gr.Markdown(data_note)
        with gr.Row():
            config = gr.Dropdown(list(CONFIGS), value="smoke" if "smoke" in CONFIGS else None, label="Config")
            start_from = gr.Dropdown([FRESH] + ckpts.names(), value=FRESH, label="Start from",
                                     info="fresh weights, or fine-tune a checkpoint of the same model shape",
                                     allow_custom_value=True)  # checked by ckpts.resolve, as for the menu above
            run_name = gr.Textbox(label="Checkpoint name", placeholder="run-<date>-<time>", elem_id="run_name")
        with gr.Row():
            knobs = [gr.Number(label="Steps", precision=0, minimum=1, maximum=50_000),
                     gr.Number(label="Learning rate", minimum=0),
                     gr.Number(label="Batch", precision=0, minimum=1, maximum=512),
                     gr.Slider(1, 5, step=1, label="Max digits per canvas"),
                     gr.Number(label="Model width (multiple of heads)", precision=0)]
        with gr.Row():
            start = gr.Button("Start training", variant="primary", elem_id="train_start")
            stop = gr.Button("Stop", variant="stop", elem_id="train_stop")
        status = gr.Markdown("Not started.", label="Training status", show_label=False, elem_id="train_status")
        with gr.Row():
            loss_plot = gr.LinePlot(x="step", y="value", color="metric", height=300, x_title="step", y_title="loss",
                                    **curve_plot("loss"))
            acc_plot = gr.LinePlot(x="step", y="value", color="metric", height=300, y_lim=[0, 1], x_title="step",
                                   y_title="accuracy", **curve_plot("token_acc", "val_seq_acc"))
        samples = gr.Gallery(label="Sample predictions on fresh canvases", columns=3, height=240, format="png",
                             object_fit="contain", elem_classes="nn-samples", allow_preview=False)
        table = gr.Dataframe(headers=TABLE, label="Evaluation by length")
        token = gr.State(None)
        corr = corrections_panel(ev, live)
    start_from.focus(ev.start_choices, None, start_from, api_name=False)
    config.change(ev.config_knobs, config, knobs, api_name=False)
    stop.click(ev.stop, token, status, api_name="stop_training", queue=False)  # answered even when the queue is full
    return SimpleNamespace(config=config, knobs=knobs, run_name=run_name, start_from=start_from, start=start,
                           outs=[status, loss_plot, acc_plot, samples, table], token=token, corr=corr)


def corrections_panel(ev: Handlers, live: gr.State) -> SimpleNamespace:
    """The saved corrections: how many, the newest, a zip of all, the live model's score, and the switch that
    mixes them into the next run. In public only how many: the rest is the owner's."""
    with gr.Accordion("Corrections: readings people fixed", open=True):
        with gr.Row():
            count = gr.Markdown(label="Corrections count", show_label=False, elem_id="corr_count")
            refresh = gr.Button("↻ Refresh", size="sm", scale=0)
        latest = gr.Gallery(label="Newest corrections", columns=6, height=160, object_fit="contain",
                            elem_id="corr_latest", visible=not ev.public)
        with gr.Row(visible=not ev.public):
            zip_btn = gr.Button("Zip all corrections", size="sm")
            zip_file = gr.File(label="Download", interactive=False, height=60)
            score_btn = gr.Button("Score the live model on them", size="sm")
        accuracy = gr.Markdown(label="Accuracy on the corrections", show_label=False, elem_id="corr_accuracy")
        use = gr.Checkbox(False, label="Fine-tune on them too: a quarter of every batch (a fixed fifth of them is "
                          "held out and scored before and after)", elem_id="corr_use", visible=not ev.public)
    refresh.click(ev.corrections_overview, None, [count, latest], api_name="corrections")
    if not ev.public:  # (the handlers refuse in public too)
        zip_btn.click(ev.corrections_zip, None, zip_file, api_name="corrections_zip")
        score_btn.click(ev.corrections_accuracy, live, accuracy, api_name="corrections_accuracy")
    return SimpleNamespace(use=use, shown=[count, latest])


def model_tab() -> list:
    with gr.Tab("Model", id="model"):
        card_md = gr.Markdown(label="Model card", show_label=False)
        acc = gr.Dataframe(headers=TABLE, label="Accuracy by length")
        with gr.Accordion("Config (config.json)", open=False):
            cfg_json = gr.JSON(label="Config")
    return [card_md, acc, cfg_json]


def build(ckpts: Checkpoints, slot: TrainingSlot, data_note: str, corrections: Corrections | None = None,
          settings: Settings = Settings()) -> gr.Blocks:
    """The app, with the settings server.main parsed (their defaults when built by a test or a bench)."""
    ev = Handlers(ckpts, slot, CONFIGS, HEAVY_EVERY, corrections, settings.public)
    live0 = ckpts.default()
    try:
        cfg0 = ckpts.predictor(live0).config if live0 else None
    except CheckpointError as e:
        log.error("%s", e)
        cfg0 = None
    layers, heads = views.layer_head_choices(cfg0)
    with gr.Blocks(title="NextNum", delete_cache=(settings.cache_seconds, settings.cache_seconds)) as demo:
        live = gr.State(live0)
        top = header(ckpts, live0)
        draw = draw_tab(ev, live, layers, heads)
        cam = webcam_tab(ev, live, settings)
        up = upload_tab(ev, live, layers, heads)
        tr = train_tab(ev, ckpts, data_note, live)
        card = model_tab()
        # across tabs: the checkpoint menu switches this session's model, its card and the encoder selectors
        selectors = [draw.layer, draw.head, up.layer, up.head]
        top.ckpt.input(ev.choose, [top.ckpt, live], [live, top.ckpt] + card + selectors, api_name="select_checkpoint")
        top.refresh.click(ev.names, None, top.ckpt, api_name="list_checkpoints")
        tr.start.click(ev.train, [tr.config, *tr.knobs, tr.run_name, tr.start_from, tr.corr.use],
                       tr.outs + [top.ckpt, tr.token, tr.start_from], api_name="train", concurrency_limit=2,
                       concurrency_id="train", show_progress="hidden")  # the status line says step and ETA
        demo.load(ev.names, None, top.ckpt, api_name=False)
        demo.load(ev.start_choices, None, tr.start_from, api_name=False)
        demo.load(ev.card, live, card, api_name=False)
        demo.load(ev.corrections_overview, None, tr.corr.shown, api_name=False)
        for fix in (draw.fix, up.fix, cam.fix):  # a saved correction shows up in the Train tab's panel
            fix.save.click(ev.corrections_overview, None, tr.corr.shown, api_name=False)
        demo.load(ev.config_knobs, tr.config, tr.knobs, api_name=False)
    return demo


if __name__ == "__main__":
    server.main(build)
