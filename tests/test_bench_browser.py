"""bench/browser.py on its tiny settings: Chromium draws on the Draw tab without choosing a tool first and
films the fake camera, and the script ends with one line of valid JSON (the timings are not tested)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SHIPPED


pytestmark = pytest.mark.slow


def test_browser_bench_runs_and_profiles_the_draw_tab_and_the_webcam():
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("/usr/bin/chromium not found (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not (SHIPPED / "model.safetensors").is_file():
        pytest.skip("no shipped model")
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "browser.py"), "--quick", "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, f"exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert "|" in r.stdout, "no table"
    res = json.loads(r.stdout.strip().splitlines()[-1])
    draw, cam = res["draw"], res["webcam"]
    assert res["bench"] == "browser" and draw["numbers"] == 3
    assert draw["settle_ms"]["n"] == 3 and draw["settle_ms"]["p50"] > 0, "a number got no reading after its last stroke"
    assert {"queue", "server"} <= set(draw["profile"]), draw["profile"]
    assert "upload" not in draw["profile"], "the page uploaded files for a drawing (it travels inside the event)"
    # each number is drawn on a cleared sketchpad: a reading longer than the number read earlier strokes too
    assert all(len(row["read"]) == len(row["text"]) for row in draw["rows"]), draw["rows"]
    assert cam["readings_per_s"] > 0 and cam["read"].isdigit()
    assert cam["uploads"] == 0, "the page uploaded files while the webcam streamed (the sketchpad's drawing again?)"
