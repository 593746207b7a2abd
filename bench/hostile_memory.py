"""Memory under hostile files: the app's peak resident memory while it refuses decompression bombs.

    python bench/hostile_memory.py [--json]

Starts `python app.py` with the shipped model on a loopback port, then sends small files that would take
gigabytes to decode: a float32 10000x10000 TIFF and a 30000x30000 PNG with a 2 MB zTXt chunk to /predict,
a 12000x12000 PNG to /read_sketch (as a data URL) and /predict_frame_once, and a 30000x30000 PNG to
/correct. Each alone (the peak, VmHWM, reset before each through /proc/PID/clear_refs), then six at once
across the three endpoints, then the resident memory after 5 s idle. Prints a table; --json adds one
JSON line last.
"""
from __future__ import annotations

import argparse
import base64
import json
import shutil
import struct
import sys
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from appserver import SHIPPED, AppServer  # noqa: E402
from procmem import memory_mb  # noqa: E402


def png_of(w: int, h: int, text: bytes = b"") -> bytes:
    """A valid white grey PNG of w x h, written row by row so that this process never holds its pixels."""
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    z, row, idat = zlib.compressobj(9), b"\x00" + b"\xff" * w, []
    for _ in range(h):
        idat.append(z.compress(row))
    idat.append(z.flush())
    extra = chunk(b"zTXt", b"comment\x00\x00" + zlib.compress(text, 9)) if text else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + extra
            + chunk(b"IDAT", b"".join(idat)) + chunk(b"IEND", b""))


def make_files(d: Path) -> dict[str, Path]:
    from PIL import Image
    files = {"float32 TIFF 10000²": d / "float.tiff", "PNG 30000² + 2 MB zTXt": d / "ztxt.png",
             "PNG 12000²": d / "12000.png", "PNG 30000²": d / "30000.png"}
    Image.new("F", (10_000, 10_000)).save(files["float32 TIFF 10000²"], compression="tiff_adobe_deflate")
    files["PNG 30000² + 2 MB zTXt"].write_bytes(png_of(30_000, 30_000, b"x" * (2 * 2**20)))
    files["PNG 12000²"].write_bytes(png_of(12_000, 12_000))
    files["PNG 30000²"].write_bytes(png_of(30_000, 30_000))
    return files


def send(url: str, api: str, path: Path) -> str:
    """One request as an API client sends it; what the app answered (its error message when refused)."""
    from gradio_client import Client, handle_file
    c = Client(url, verbose=False, download_files=False)
    args = {"/predict": [handle_file(str(path))], "/predict_frame_once": [handle_file(str(path)), True],
            "/correct": [handle_file(str(path)), "12"],
            "/read_sketch": ["data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()]}[api]
    try:
        return str(c.predict(*args, api_name=api))[:80]
    except Exception as e:  # noqa: BLE001 - the refusal is the answer measured
        return f"refused: {str(e)[:70]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nextnum-hostile-"))
    try:
        files = make_files(tmp)
        (tmp / "checkpoints").mkdir()
        shutil.copytree(SHIPPED, tmp / "checkpoints" / "nextnum")
        app = AppServer(tmp / "checkpoints", "nextnum", tmp / "app.log",
                        env={"GRADIO_TEMP_DIR": str(tmp / "cache"), "NEXTNUM_CORRECTIONS": str(tmp / "corr")})
        pid = app.proc.pid
        try:
            cases = [("float32 TIFF 10000²", "/predict"), ("PNG 30000² + 2 MB zTXt", "/predict"),
                     ("PNG 12000²", "/read_sketch"), ("PNG 12000²", "/predict_frame_once"),
                     ("PNG 30000²", "/correct")]
            send(app.url, "/predict", ROOT / "examples" / "4072.png")  # warm: the model loaded, a reading made
            start = memory_mb(pid)["VmRSS"]
            rows = []
            for name, api in cases:
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS now
                base, t = memory_mb(pid)["VmRSS"], time.monotonic()
                said = send(app.url, api, files[name])
                rows.append({"file": name, "endpoint": api, "peak_mb": round(memory_mb(pid)["VmHWM"] - base, 1),
                             "seconds": round(time.monotonic() - t, 2), "answer": said})
            Path(f"/proc/{pid}/clear_refs").write_text("5")
            base = memory_mb(pid)["VmRSS"]
            six = cases[:4] + [("PNG 30000²", "/correct"), ("float32 TIFF 10000²", "/predict_frame_once")]
            with ThreadPoolExecutor(6) as ex:
                list(ex.map(lambda c: send(app.url, c[1], files[c[0]]), six))
            together = memory_mb(pid)["VmHWM"] - base
            time.sleep(5)
            after = memory_mb(pid)["VmRSS"]
        finally:
            app.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'file':24} {'endpoint':20} {'peak +MB':>9} {'s':>6}  answer")
    for r in rows:
        print(f"{r['file']:24} {r['endpoint']:20} {r['peak_mb']:9.1f} {r['seconds']:6.2f}  {r['answer']}")
    print(f"six at once: peak +{together:.1f} MB; RSS at start {start:.0f} MB, after {after:.0f} MB "
          f"({after - start:+.0f} MB)")
    if args.json:
        print(json.dumps({"rows": rows, "six_at_once_peak_mb": round(together, 1), "rss_start_mb": round(start, 1),
                          "rss_after_mb": round(after, 1)}))


if __name__ == "__main__":
    main()
