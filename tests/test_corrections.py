"""The corrections folder: what may be saved, atomic and concurrent writes, the held-out split, the zip."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from nextnum import corrections as C
from nextnum.scoring import score_corrections
from conftest import ROOT



def png(tmp_path: Path, seed: int = 0, name: str = "img.png") -> Path:
    img = np.full((60, 120), 255, np.uint8)
    cv2.putText(img, str(seed), (10, 45), cv2.FONT_HERSHEY_SIMPLEX, 1.5, 0, 3)
    p = tmp_path / name
    cv2.imwrite(str(p), img)
    return p


def test_a_saved_correction_is_listed_with_its_original_bytes(tmp_path):
    src = png(tmp_path)
    store = C.Corrections(tmp_path / "corr")
    saved = store.save(src, " 4072 ")
    assert saved.label == "4072" and saved.count == 1
    assert json.loads((tmp_path / "corr" / "labels.json").read_text()) == {saved.name: "4072"}
    assert (tmp_path / "corr" / saved.name).read_bytes() == src.read_bytes()  # the pixels that were read


def test_an_array_is_saved_losslessly_as_png(tmp_path):
    rgba = np.zeros((30, 50, 4), np.uint8)
    rgba[5:25, 10:12] = (0, 0, 0, 255)
    saved = C.Corrections(tmp_path).save(rgba, "1")
    back = cv2.imread(str(tmp_path / saved.name), cv2.IMREAD_UNCHANGED)
    assert saved.name.endswith(".png") and np.array_equal(cv2.cvtColor(back, cv2.COLOR_BGRA2RGBA), rgba)


@pytest.mark.parametrize("label", ["", "  ", "123456", "12a", "-1", "1 2", "٣", None, "4.0"])
def test_a_bad_label_is_refused_and_saves_nothing(tmp_path, label):
    store = C.Corrections(tmp_path / "corr")
    with pytest.raises(C.CorrectionError, match="1 to 5 digits"):
        store.save(png(tmp_path), label)
    assert not (tmp_path / "corr").exists() or not list((tmp_path / "corr").iterdir())


def test_a_file_that_is_not_an_image_is_refused(tmp_path):
    f = tmp_path / "notes.png"
    f.write_bytes(b"\x89PNG but not really")
    with pytest.raises(C.CorrectionError, match="not an image"):
        C.Corrections(tmp_path / "corr").save(f, "12")
    with pytest.raises(C.CorrectionError, match="no image"):
        C.Corrections(tmp_path / "corr").save(None, "12")


def test_an_image_over_5_mb_is_refused(tmp_path):
    big = tmp_path / "big.png"
    noise = np.random.default_rng(0).integers(0, 256, (1400, 1400, 3), np.uint8)  # incompressible: ~5.9 MB
    cv2.imwrite(str(big), noise)
    assert big.stat().st_size > C.MAX_BYTES
    with pytest.raises(C.CorrectionError, match="at most 5 MB"):
        C.Corrections(tmp_path / "corr").save(big, "12")


def test_a_full_folder_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "MAX_CORRECTIONS", 2)
    store = C.Corrections(tmp_path / "corr")
    store.save(png(tmp_path, 1, "a.png"), "1")
    store.save(png(tmp_path, 2, "b.png"), "2")
    with pytest.raises(C.CorrectionError, match="full"):
        store.save(png(tmp_path, 3, "c.png"), "3")
    assert len(store) == 2


def test_saving_the_same_image_again_keeps_one_entry_with_the_newest_label(tmp_path):
    store = C.Corrections(tmp_path / "corr")
    a = store.save(png(tmp_path), "17")
    b = store.save(png(tmp_path), "71")
    assert a.name == b.name and store.labels() == {b.name: "71"} and b.count == 1
    assert sorted(p.name for p in store.root.iterdir() if not p.name.startswith(".")) == sorted([b.name, C.LABELS])


def test_an_image_saved_under_the_older_naming_is_relabelled_not_doubled(tmp_path):
    store = C.Corrections(tmp_path / "corr")
    data = png(tmp_path).read_bytes()
    old = f"{hashlib.sha1(data).hexdigest()[:12]}-17.png"  # how folders were named before: hash and label
    store.root.mkdir()
    (store.root / old).write_bytes(data)
    (store.root / C.LABELS).write_text(json.dumps({old: "17"}))
    b = store.save(png(tmp_path), "71")
    assert store.labels() == {b.name: "71"} and not (store.root / old).exists()


def test_a_byte_budget_keeps_the_folder_from_growing_past_it(tmp_path):
    size = png(tmp_path, 1, "a.png").stat().st_size
    store = C.Corrections(tmp_path / "corr", max_bytes=int(size * 2.5))
    store.save(png(tmp_path, 1, "a.png"), "1")
    store.save(png(tmp_path, 2, "b.png"), "2")
    with pytest.raises(C.CorrectionError, match=r"full \(0 MB\)"):
        store.save(png(tmp_path, 3, "c.png"), "3")
    assert store.save(png(tmp_path, 2, "b.png"), "7").count == 2  # relabelling takes no room


def test_eight_concurrent_writers_lose_nothing(tmp_path):
    store = C.Corrections(tmp_path / "corr")
    imgs = [png(tmp_path, i, f"{i}.png") for i in range(40)]
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda i: C.Corrections(tmp_path / "corr").save(imgs[i], str(i)), range(40)))
    assert sorted(store.labels().values(), key=int) == [str(i) for i in range(40)]


def test_writers_in_several_processes_lose_nothing(tmp_path):
    code = ("import sys, numpy as np; from nextnum.corrections import Corrections\n"
            "k = int(sys.argv[1])\n"
            "for i in range(10):\n"
            "    img = np.full((20, 20), 255, np.uint8); img[k, i] = 0\n"
            "    Corrections(sys.argv[2]).save(img, str(k * 10 + i))\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(k), str(tmp_path / "corr")], cwd=ROOT) for k in range(4)]
    assert all(p.wait(60) == 0 for p in procs)
    assert sorted(map(int, C.Corrections(tmp_path / "corr").labels().values())) == list(range(40))


def test_a_killed_writer_leaves_a_valid_folder_listing_only_whole_images(tmp_path):
    code = ("import sys, numpy as np; from nextnum.corrections import Corrections\n"
            "rng = np.random.default_rng(0)\n"
            "for i in range(10**6):\n"
            "    img = rng.integers(0, 256, (300, 400), np.uint8)\n"  # ~120 KB each: writes take a while
            "    Corrections(sys.argv[1]).save(img, str(i % 99999))\n")
    root = tmp_path / "corr"
    for delay in (0.05, 0.3, 0.7):
        p = subprocess.Popen([sys.executable, "-c", code, str(root)], cwd=ROOT)
        deadline = time.time() + 120
        n0 = len(json.loads((root / "labels.json").read_text())) if (root / "labels.json").exists() else 0
        while time.time() < deadline and (not (root / "labels.json").exists()
                                          or len(json.loads((root / "labels.json").read_text())) <= n0):
            time.sleep(0.05)  # until it is saving (the import takes a while on a busy machine)
        time.sleep(delay)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        labels = json.loads((root / "labels.json").read_text())  # valid JSON after every kill
        for name in labels:
            data = (root / name).read_bytes()
            assert name.startswith(hashlib.sha1(data).hexdigest()[:12])  # the whole image, as it was hashed
    assert len(labels) > 0


def test_the_held_out_part_is_fixed_by_name_and_about_one_in_five(tmp_path):
    names = [f"{i:04d}.png" for i in range(2000)]
    held = [n for n in names if C.is_held_out(n)]
    assert held == [n for n in names if C.is_held_out(n)]  # the same every time
    assert 0.17 < len(held) / len(names) < 0.23
    store = C.Corrections(tmp_path / "corr")
    for i in range(30):
        store.save(png(tmp_path, i, f"{i}.png"), str(i))
    train, test = store.split()
    assert set(train) | set(test) == set(store.labels()) and not set(train) & set(test)
    assert all(C.is_held_out(n) for n in test)


def test_the_zip_holds_every_image_and_the_labels_in_the_evaluate_layout(tmp_path):
    store = C.Corrections(tmp_path / "corr")
    for i in range(3):
        store.save(png(tmp_path, i, f"{i}.png"), str(i))
    store.zip_to(tmp_path / "all.zip")
    with zipfile.ZipFile(tmp_path / "all.zip") as z:
        names = set(z.namelist())
        labels = json.loads(z.read("corrections/labels.json"))
        assert names == {f"corrections/{n}" for n in labels} | {"corrections/labels.json"}
        assert labels == store.labels()


def test_latest_lists_newest_first(tmp_path):
    store = C.Corrections(tmp_path / "corr")
    for i in range(5):
        store.save(png(tmp_path, i, f"{i}.png"), str(i))
    assert [label for _, label in store.latest(3)] == ["4", "3", "2"]


def test_an_image_the_decoder_refuses_is_not_saved(tmp_path):
    from PIL import Image
    Image.new("L", (12_000, 12_000), 255).save(tmp_path / "bomb.png")  # 100 KB that decode to 144 MB
    store = C.Corrections(tmp_path / "corr")
    with pytest.raises(C.CorrectionError, match="NextNum reads images of at most"):
        store.save(tmp_path / "bomb.png", "12")
    assert store.labels() == {}


def test_a_bad_file_in_the_folder_is_skipped_by_scoring_with_a_warning(tmp_path, predictor, caplog):
    store = C.Corrections(tmp_path / "corr")
    good = store.save(png(tmp_path, 1), "1")
    (store.root / "broken-7.png").write_bytes(b"\x89PNG not really")
    (store.root / C.LABELS).write_text(json.dumps({good.name: "1", "broken-7.png": "7"}))
    res = score_corrections(predictor, store.root)
    assert res is not None and res["samples"] == 1
    assert "skipped broken-7.png" in caplog.text


def test_each_zip_replaces_the_one_before_it(tmp_path):
    from nextnum.web.feedback import ZipFolder
    store = C.Corrections(tmp_path / "corr")
    store.save(png(tmp_path, 1), "1")
    zips = ZipFolder()
    first = Path(zips.write(store))
    time.sleep(1.1)  # zips are named by the second
    second = Path(zips.write(store))
    assert second.is_file() and not first.exists() and first.parent == second.parent
    assert [p.name for p in second.parent.iterdir()] == [second.name]


def test_an_empty_corrections_folder_given_is_the_one_used(tmp_path):
    """An empty store is falsy (it has a length): the handlers must still use the folder they were given."""
    from nextnum.web.models import Checkpoints
    from nextnum.web.events import Handlers
    store = C.Corrections(tmp_path / "mine")
    ev = Handlers(Checkpoints(tmp_path / "checkpoints"), None, {}, 4, store)
    ev.correct(np.asarray(cv2.imread(str(png(tmp_path, 3)), cv2.IMREAD_GRAYSCALE)), "3")
    assert len(C.Corrections(tmp_path / "mine")) == 1 and not (tmp_path / "corrections").exists()
