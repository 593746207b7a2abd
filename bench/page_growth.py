"""Where a page's slowdown with use is not: draw N numbers on one Draw tab (headless Chromium) and print, per
number, its settle time with the page's own counters (Chrome's Performance.getMetrics: DOM nodes, event
listeners, JS heap, layouts and style recalculations; resource-timing entries; images).

    python bench/page_growth.py 24
"""
import sys
import tempfile
from pathlib import Path
sys.path.insert(0, "bench"); sys.path.insert(0, "tests")
import _common as C, _page as P
from browser import numbers, CHROMIUM, ARGS
from playwright.sync_api import sync_playwright
N = int(sys.argv[1]) if len(sys.argv) > 1 else 30
tmp = Path(tempfile.mkdtemp())
app = C.App(C.checkpoint_path(None), tmp / "app")
rows = []
print("(number, settle ms, DOM nodes, JS listeners, JS heap MB, layouts, style recalcs, layout objects, "
      "resource entries, images, ms of script / tasks / layout / style in the page during the number)")
try:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = b.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        cdp = page.context.new_cdp_session(page); cdp.send("Performance.enable")
        page.goto(app.url, wait_until="load"); page.wait_for_selector("#sketch canvas", timeout=60000)
        P.watch(page)
        page.get_by_role("tab", name="Draw").click()
        prev = {}
        for i, text in enumerate(numbers(N, 0)):
            P.clear(page); P.draw_number(page, text); r = P.wait_settled(page, 0.8)
            m = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
            spent = {k: round((m[k] - prev.get(k, 0)) * 1000) for k in ("ScriptDuration", "TaskDuration",
                                                                         "LayoutDuration", "RecalcStyleDuration")}
            prev.update(m)
            extra = page.evaluate("({res: performance.getEntriesByType('resource').length, imgs: document.images.length, blobs: [...document.querySelectorAll('img')].filter(i=>i.src.startsWith('blob:')).length})")
            rows.append((i, r["settle_ms"], m["Nodes"], m["JSEventListeners"], round(m["JSHeapUsedSize"]/1e6,1), m["LayoutCount"], m["RecalcStyleCount"], m.get("LayoutObjects"), extra["res"], extra["imgs"], spent))
            print(rows[-1], flush=True)
        b.close()
finally:
    app.close()
