"""The app's helpers: the model card says what the live checkpoint is (and what a fine-tuned one started from);
the Train tab offers only configs that describe a model."""
from nextnum import Predictor
from nextnum.web.training import training_configs
from nextnum.web.views import model_card


def test_model_card_of_the_shipped_model_names_both_training_stages():
    p = Predictor.load()
    text, rows, cfg = model_card(p, "nextnum")
    assert f"{p.model.num_params():,}" in text
    grid = p.config.model.grid
    assert f"patch grid {grid[0]}×{grid[1]}" in text
    assert f"{p.metrics['steps']} steps" in text
    parent = p.metrics["init_metrics"]
    assert f"started from:** a model trained {parent['steps']} steps" in text
    assert rows and cfg == p.config.to_dict()


def test_model_card_without_lineage_or_model():
    p = Predictor.load()
    p.metrics = {k: v for k, v in p.metrics.items() if k not in ("init", "init_metrics")}
    assert "started from" not in model_card(p, "x")[0]
    assert "No model loaded" in model_card(None, "x")[0]


def test_train_tab_offers_only_configs_that_describe_a_model(tmp_path):
    from pathlib import Path
    names = training_configs(Path(__file__).resolve().parent.parent / "configs")
    assert {"default", "fine", "fonts", "seed", "smoke"} <= set(names)
    assert "sweep" not in names and "clean" not in names  # a sweep grid; evaluation-only data settings
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "ok.json").write_text('{"model": {}}')
    assert list(training_configs(tmp_path)) == ["ok"]
