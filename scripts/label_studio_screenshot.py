"""Screenshot of a task as the annotator sees it in Label Studio, for the README (issue #17).

Drives headless Chromium (Debian package `chromium`) over the DevTools protocol: log in, open
the task in the labelling view, save a PNG. Needs `websocket-client` (pip install
websocket-client) in the Python that runs it; not a dependency of the harness.

    python scripts/label_studio_screenshot.py --url http://127.0.0.1:8089 --project 1 \
        --task 1 --out docs/label_studio_region_question.png
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request

import websocket  # websocket-client

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--hide-scrollbars"]


class Page:
    """One Chromium tab over the DevTools protocol."""

    def __init__(self, ws_url: str):
        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.ids = itertools.count(1)

    def send(self, method: str, **params):
        i = next(self.ids)
        self.ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == i:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def js(self, expression: str):
        out = self.send("Runtime.evaluate", expression=expression, awaitPromise=True,
                        returnByValue=True)
        return out.get("result", {}).get("value")

    def goto(self, url: str, settle: float = 3.0) -> None:
        self.send("Page.navigate", url=url)
        for _ in range(120):
            if self.js("document.readyState") == "complete":
                break
            time.sleep(0.5)
        time.sleep(settle)

    def wait_for(self, selector: str, seconds: float = 60) -> bool:
        for _ in range(int(seconds * 2)):
            if self.js(f"!!document.querySelector({json.dumps(selector)})"):
                return True
            time.sleep(0.5)
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--project", type=int, required=True)
    ap.add_argument("--task", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--user", default="harness@example.com")
    ap.add_argument("--password", default="harness-test-only")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    ap.add_argument("--port", type=int, default=9333)
    ap.add_argument("--size", default="1400,1150", help="viewport width,height")
    args = ap.parse_args()
    profile = tempfile.mkdtemp(prefix="chromium-shot-")
    browser = subprocess.Popen([args.chromium, *FLAGS, f"--remote-debugging-port={args.port}",
                                f"--user-data-dir={profile}", f"--window-size={args.size}",
                                "about:blank"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        for _ in range(60):
            try:
                targets = json.load(urllib.request.urlopen(
                    f"http://127.0.0.1:{args.port}/json/list", timeout=2))
                page_target = next(t for t in targets if t["type"] == "page")
                break
            except (OSError, StopIteration):
                time.sleep(0.5)
        page = Page(page_target["webSocketDebuggerUrl"])
        page.send("Page.enable")
        width, height = (int(v) for v in args.size.split(","))
        page.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)
        page.goto(f"{args.url}/user/login/")
        page.js(f"""(() => {{
            document.querySelector('input[name=email]').value = {json.dumps(args.user)};
            document.querySelector('input[name=password]').value = {json.dumps(args.password)};
            document.querySelector('form').submit(); }})()""")
        time.sleep(4)
        page.goto(f"{args.url}/projects/{args.project}/data?task={args.task}", settle=2)
        if not page.wait_for("canvas", 90):
            raise SystemExit("the labelling view did not render a canvas in 90 s")
        time.sleep(4)  # the image and the pre-drawn box
        shot = page.send("Page.captureScreenshot", format="png")
        with open(args.out, "wb") as fh:
            fh.write(base64.b64decode(shot["data"]))
        print(f"written: {args.out}")
        return 0
    finally:
        browser.terminate()
        browser.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
