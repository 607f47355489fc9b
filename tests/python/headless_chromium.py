"""Headless Chromium driven over the DevTools protocol, through a pipe.

`--remote-debugging-pipe` makes Chromium read protocol commands from fd 3 and write
replies and events to fd 4, each message a JSON object ended by a NUL byte. That
needs no network port and no library beyond the standard one.

    with HeadlessChromium() as browser:
        page = browser.open("file:///tmp/x/index.html")   # waits for the load event
        page.evaluate("document.images.length")
        page.screenshot()                                  # PNG bytes of the whole page
        page.errors                                        # everything that went wrong
"""

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium():
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class ProtocolError(RuntimeError):
    pass


class Page:
    """One tab. `errors` collects, as text, every uncaught exception, console error,
    log entry of level error and failed resource load seen since it was opened."""

    def __init__(self, browser, session_id):
        self._browser = browser
        self._session = session_id
        self.errors = []

    def call(self, method, params=None, timeout=30):
        return self._browser.call(method, params, session_id=self._session, timeout=timeout)

    def evaluate(self, expression):
        """The value of a JavaScript expression (awaited if it is a promise)."""
        reply = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                               "awaitPromise": True})
        if "exceptionDetails" in reply:
            raise ProtocolError(f"{expression!r} threw: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def screenshot(self):
        """PNG bytes of the whole page, beyond the window's height."""
        reply = self.call("Page.captureScreenshot",
                          {"format": "png", "captureBeyondViewport": True})
        return base64.b64decode(reply["data"])

    def note(self, method, params):
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append(f"uncaught: {details.get('exception', {}).get('description') or details.get('text')}")
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            texts = [str(arg.get("value", arg.get("description", ""))) for arg in params["args"]]
            self.errors.append(f"console.{params['type']}: {' '.join(texts)}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.errors.append(f"log: {entry['text']} ({entry.get('url', '')})")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            self.errors.append(f"failed to load request {params['requestId']}: {params['errorText']}")


class HeadlessChromium:
    def __init__(self, window=(1280, 1024)):
        self.path = find_chromium()
        if self.path is None:
            raise FileNotFoundError(f"no Chromium found (looked for {', '.join(CHROMIUM_NAMES)})")
        self._window = window
        self._next_id = 0
        self._buffer = b""
        self._pages = {}
        self._events = []

    def __enter__(self):
        self._profile = tempfile.TemporaryDirectory(prefix="attn-chromium-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def wire_fds():  # in the child: fd 3 is its input, fd 4 its output
            read_end, write_end = os.dup(to_browser_read), os.dup(from_browser_write)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self._process = subprocess.Popen(
            [self.path, "--headless=new", "--remote-debugging-pipe", "--no-sandbox",
             "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--no-default-browser-check",
             f"--user-data-dir={self._profile.name}",
             f"--window-size={self._window[0]},{self._window[1]}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds, close_fds=False)
        os.close(to_browser_read)
        os.close(from_browser_write)
        return self

    def __exit__(self, *exc):
        try:
            self.call("Browser.close", timeout=10)
        except (ProtocolError, OSError, TimeoutError):
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._profile.cleanup()

    def open(self, url, timeout=60):
        """A new tab showing `url`, returned once its load event has fired."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        self._pages[session] = page
        for domain in ("Runtime", "Log", "Network", "Page"):
            page.call(f"{domain}.enable")
        reply = page.call("Page.navigate", {"url": url})
        if reply.get("errorText"):
            raise ProtocolError(f"navigating to {url}: {reply['errorText']}")
        self._wait_for_event("Page.loadEventFired", session, timeout)
        return page

    def call(self, method, params=None, session_id=None, timeout=30):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline, f"a reply to {method}")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise ProtocolError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _wait_for_event(self, method, session_id, timeout):
        deadline = time.monotonic() + timeout
        for index, event in enumerate(self._events):
            if event == (method, session_id):
                del self._events[index]
                return
        while True:
            self._read(deadline, method)
            if self._events and self._events[-1] == (method, session_id):
                self._events.pop()
                return

    def _read(self, deadline, waiting_for):
        """The next message; events are handed to their page on the way."""
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Chromium sent no {waiting_for} in time")
            if self._process.poll() is not None:
                raise ProtocolError(f"Chromium exited with {self._process.returncode} "
                                    f"while waiting for {waiting_for}")
            ready, _, _ = select.select([self._from_browser], [], [], 0.5)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise ProtocolError(f"Chromium closed its pipe while waiting for {waiting_for}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message = json.loads(raw)
        if "method" in message:
            page = self._pages.get(message.get("sessionId"))
            if page is not None:
                page.note(message["method"], message.get("params", {}))
            self._events.append((message["method"], message.get("sessionId")))
        return message
