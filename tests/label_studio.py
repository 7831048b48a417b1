"""A private Label Studio server on localhost for tests, and headless-Chromium screenshots.

``tools/install.sh --with_label_studio`` puts Label Studio in its own virtual environment
(its pins clash with ESPnet's): ``$LABEL_STUDIO_VENV``, by default
``~/.cache/espnet_lp/label_studio_venv`` (outside the checkout, so that it is reused by the
next clone and CI run). :func:`why_unavailable` says why a test cannot run, for its skip
message. The server runs with its SQLite default in a temporary data dir, on 127.0.0.1 and
a free port, with telemetry off; :meth:`LabelStudio.stop` stops its process group and
removes the data.

Screenshots use Chromium's DevTools protocol over a pipe (``--remote-debugging-pipe``): no
port, no extra package; host names other than 127.0.0.1 do not resolve in that browser.
"""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, Optional

import requests

VERSION = "1.23.2"
USER, PASSWORD, TOKEN = "annotator@example.com", "espnet-lp-test", "espnetlptesttoken0123"
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def venv_dir() -> Path:
    """Where ``tools/install.sh --with_label_studio`` put Label Studio."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return Path(os.environ.get("LABEL_STUDIO_VENV",
                               default / "espnet_lp" / "label_studio_venv"))


def why_unavailable() -> Optional[str]:
    """Why Label Studio cannot be started here (``None``: it can)."""
    exe = venv_dir() / "bin" / "label-studio"
    if not exe.is_file():
        return (f"Label Studio is not installed ({exe} missing): run "
                "tools/install.sh --with_label_studio")
    return None


def chromium() -> Optional[str]:
    for name in CHROMIUM:
        path = shutil.which(name)
        if path:
            return path
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabelStudio:
    """One Label Studio server (SQLite, local-files serving from ``document_root``).

    Args:
        work: Scratch dir (its data dir and log go there).
        document_root: ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``.
    """

    def __init__(self, work: Path, document_root: Path):
        self.work = work
        self.data = work / "ls_data"
        self.log = work / "label_studio.log"
        self.document_root = document_root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Optional[subprocess.Popen] = None
        self.session = requests.Session()

    def start(self, timeout: float = 300) -> "LabelStudio":
        env = {**os.environ, "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
               "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(self.document_root),
               # no telemetry, no version check: nothing leaves this machine
               "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "LATEST_VERSION_CHECK": "false",
               "COLLECT_ANALYTICS": "false", "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true"}
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [str(venv_dir() / "bin" / "label-studio"), "start", "--no-browser",
                 "--internal-host", "127.0.0.1",  # the address it listens on (default: all)
                 "--host", self.url, "--port", str(self.port), "--data-dir",
                 str(self.data), "--username", USER, "--password", PASSWORD,
                 "--user-token", TOKEN], env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Label Studio exited ({self.proc.returncode}): "
                                   + self.log.read_text()[-3000:])
            try:
                if requests.get(f"{self.url}/health", timeout=2).ok:
                    self._login()
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(2)
        raise RuntimeError(f"Label Studio did not answer in {timeout} s: "
                           + self.log.read_text()[-3000:])

    def _login(self) -> None:
        """A browser-like session (cookies for screenshots), then legacy token auth for the
        API (off by default in this version)."""
        s = self.session
        s.get(f"{self.url}/user/login/")
        r = s.post(f"{self.url}/user/login/", data={
            "email": USER, "password": PASSWORD,
            "csrfmiddlewaretoken": s.cookies.get("csrftoken")},
            headers={"Referer": f"{self.url}/user/login/"}, allow_redirects=False)
        if r.status_code != 302 or "sessionid" not in s.cookies:
            raise RuntimeError(f"login failed: {r.status_code} {r.text[:300]}")
        r = s.post(f"{self.url}/api/jwt/settings", json={"legacy_api_tokens_enabled": True},
                   headers={"X-CSRFToken": s.cookies.get("csrftoken"), "Referer": self.url})
        r.raise_for_status()

    def api(self, method: str, path: str, **kwargs):
        """Call the REST API with the user's token; the decoded JSON answer."""
        r = requests.request(method, f"{self.url}/api/{path.lstrip('/')}",
                             headers={"Authorization": f"Token {TOKEN}"}, timeout=60, **kwargs)
        if not r.ok:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:1000]}")
        return r.json() if r.content else None

    def cookies(self) -> Dict[str, str]:
        return dict(self.session.cookies)

    def stop(self) -> None:
        """Stop the server's process group and remove its data."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        shutil.rmtree(self.data, ignore_errors=True)


class DevTools:
    """Headless Chromium driven over ``--remote-debugging-pipe`` (one page)."""

    def __init__(self, exe: str, profile: Path, width: int = 1280, height: int = 900):
        r3, self._w3 = os.pipe()  # we write commands to its fd 3
        self._r4, w4 = os.pipe()  # it writes answers to its fd 4

        def fds():  # in the child: its fds 3 and 4 (fresh copies first, in case of overlap)
            a, b = os.dup(r3), os.dup(w4)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-default-apps",
             "--mute-audio", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
             f"--window-size={width},{height}", "about:blank"],
            preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(r3)
        os.close(w4)
        self._buf = b""
        self._id = 0
        self.session = None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    def call(self, method: str, **params):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self._w3, json.dumps(msg).encode() + b"\0")
        while True:
            answer = self._read()
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def _read(self) -> Dict:
        while b"\0" not in self._buf:
            chunk = os.read(self._r4, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)
        os.close(self._w3)
        os.close(self._r4)


def screenshot_page(url: str, cookies: Dict[str, str], out: Path, ready_js: str,
                    profile: Path, timeout: float = 90) -> Dict:
    """Open ``url`` with ``cookies`` set, wait until ``ready_js`` is truthy, save a PNG.

    Returns:
        What ``ready_js`` evaluated to last (for the test's checks).
    """
    exe = chromium()
    if exe is None:
        raise RuntimeError("no chromium (tools/install.sh --with_label_studio installs it)")
    tools = DevTools(exe, profile)
    try:
        for name, value in cookies.items():
            tools.call("Network.setCookie", name=name, value=value, url=url)
        tools.call("Page.navigate", url=url)
        deadline, value = time.time() + timeout, None
        while time.time() < deadline:
            value = tools.evaluate(ready_js)
            if value:
                break
            time.sleep(1)
        time.sleep(2)  # let the waveform finish drawing
        tools.screenshot(out)
        return value
    finally:
        tools.close()
