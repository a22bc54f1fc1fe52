#!/usr/bin/env python3
"""End-to-end test of the chat page in headless Chromium, driven through chromedriver's
WebDriver HTTP API (standard library only).

Starts `dsv3 serve` on a random-weight model and chromedriver, opens the page, sends a prompt,
waits for streamed text, clicks Stop while the answer is still streaming, checks that the
server freed the sequence, sends a second turn that runs to its max_tokens, and saves a
screenshot. Exit code 0 = pass.
"""
import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriver:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.session = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())["value"]

    def start(self, profile_dir):
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={profile_dir}", "--window-size=1200,800"]
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": shutil.which("chromium") or "/usr/bin/chromium", "args": args}}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def s(self, path):
        return f"/session/{self.session}{path}"

    def get(self, url):
        self.call("POST", self.s("/url"), {"url": url})

    def find(self, css):
        return self.call("POST", self.s("/element"), {"using": "css selector", "value": css})[ELEMENT]

    def click(self, css):
        self.call("POST", self.s(f"/element/{self.find(css)}/click"), {})

    def clear_and_type(self, css, text):
        el = self.find(css)
        self.call("POST", self.s(f"/element/{el}/clear"), {})
        self.call("POST", self.s(f"/element/{el}/value"), {"text": text})

    def js(self, script, *args):
        return self.call("POST", self.s("/execute/sync"), {"script": script, "args": list(args)})

    def screenshot(self, path):
        png = base64.b64decode(self.call("GET", self.s("/screenshot")))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(png)

    def quit(self):
        if self.session:
            try:
                self.call("DELETE", self.s(""))
            except Exception:
                pass


def wait_for(what, fn, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def metric(port, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        m = re.search(rf"^{name} (\S+)$", r.read().decode(), re.M)
        return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--screenshot", required=True)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="dsv3_e2e_")
    server = subprocess.Popen([args.binary, "serve", "--random-config", args.config, "--tokenizer", args.tokenizer,
                               "--port", "0"], stdout=subprocess.PIPE, text=True)
    driver_port = free_port()
    chromedriver = subprocess.Popen([shutil.which("chromedriver") or "/usr/bin/chromedriver", f"--port={driver_port}"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wd = WebDriver(driver_port)
    try:
        port = int(re.search(r":(\d+) ", server.stdout.readline()).group(1))
        wait_for("chromedriver", lambda: _ok(f"http://127.0.0.1:{driver_port}/status"))
        wd.start(os.path.join(tmp, "profile"))
        wd.get(f"http://127.0.0.1:{port}/")
        wait_for("model name", lambda: wd.js("return document.getElementById('model').textContent.startsWith('dsv3')"))

        # Turn 1: a long answer, stopped while it streams. A random-weight model may sample the
        # end-of-sequence token at any step, and a fast machine streams a short answer before a
        # WebDriver round trip: so this turn asks the server for ignore_eos (added to the page's
        # request body), and Stop is clicked from inside the page as soon as 20 characters show.
        wd.js("""
            const fetch0 = window.fetch;
            window.fetch = (url, opts) => {
              if (url === '/v1/chat/completions' && window.e2eIgnoreEos) {
                const body = JSON.parse(opts.body);
                body.ignore_eos = true;
                opts = Object.assign({}, opts, {body: JSON.stringify(body)});
              }
              return fetch0(url, opts);
            };
            window.e2eIgnoreEos = true;
            window.e2eStop = null;
            const observer = new MutationObserver(() => {
              const m = document.querySelector('.msg.assistant .content');
              if (window.e2eStop === null && m && m.textContent.length > 20) {
                const stop = document.getElementById('stop');
                window.e2eStop = {enabled: !stop.disabled, finish: m.closest('.msg').dataset.finish || ''};
                stop.click();
                observer.disconnect();
              }
            });
            observer.observe(document.getElementById('messages'), {subtree: true, childList: true, characterData: true});
        """)
        wd.clear_and_type("#max_tokens", "3000")
        wd.clear_and_type("#seed", "7")
        wd.clear_and_type("#prompt", "Write a long story about a lighthouse keeper.")
        wd.click("#send")
        stop = wait_for("streamed text and the Stop click", lambda: wd.js("return window.e2eStop"))
        assert stop["enabled"], "Stop is enabled while streaming"
        assert stop["finish"] == "", f"the answer had finished ({stop['finish']!r}) before Stop was clicked"
        finish = wait_for("stop to take effect", lambda: wd.js(
            "const m = document.querySelector('.msg.assistant'); return m && m.dataset.finish"))
        wd.js("window.e2eIgnoreEos = false;")
        assert finish == "stopped", f"first answer finished with {finish!r}, expected it to be stopped"
        wait_for("the server to free the stopped sequence",
                 lambda: metric(port, "dsv3_active_sequences") == 0 and metric(port, "dsv3_kv_cache_pages_used") == 0,
                 timeout=10)

        # Turn 2: the conversation continues and runs to max_tokens.
        wd.clear_and_type("#max_tokens", "40")
        wd.clear_and_type("#prompt", "Now a short poem, please.")
        wd.click("#send")
        wait_for("second answer", lambda: wd.js(
            "const m = document.querySelectorAll('.msg.assistant'); return m.length == 2 && m[1].dataset.finish"))
        finish2 = wd.js("return document.querySelectorAll('.msg.assistant')[1].dataset.finish")
        assert finish2 in ("length", "stop"), finish2
        assert wd.js("return document.querySelectorAll('.msg.user').length") == 2
        text2 = wd.js("return document.querySelectorAll('.msg.assistant .content')[1].textContent")
        assert len(text2) > 0, "second answer is empty"
        wd.screenshot(args.screenshot)
        print(f"chat page e2e: ok; screenshot {args.screenshot}")
    finally:
        wd.quit()
        chromedriver.terminate()
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=30)
        chromedriver.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    if code != 0:
        print(f"dsv3 serve exited with {code}", file=sys.stderr)
        return 1
    return 0


def _ok(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except Exception:
        return False


if __name__ == "__main__":
    sys.exit(main())
