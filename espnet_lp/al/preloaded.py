"""Local ``python -m`` jobs forked from an interpreter that has ESPnet imported already.

A job such as ``python -m espnet2.bin.asr_train ...`` spends 8-15 s on imports (torch,
ESPnet's task registry, typeguard instrumenting hundreds of constructors) before its first
batch. A demo round runs a few such jobs of a few seconds of work each, so on 2 CPU cores the
imports were a third of the demo's wall time. The local backend therefore starts these jobs
from a *zygote*: a helper interpreter (``python -m espnet_lp.al.preloaded``) that imported
:data:`PRELOAD` once and forks one child per job. The child sends its output to the job's log,
takes the job's environment, working directory and thread count, and runs the module as
``__main__`` (``runpy``), as the interpreter would; the zygote reports its exit status. Exit
status, log and environment are those of the plain process.

Forking is safe because the zygote runs no torch op (no OpenMP pool, no CUDA context) and
starts no threads of its own (BLAS libraries handle fork themselves). Everything dies with the
driver as plain jobs do: the zygote and each job ask the kernel for SIGTERM when their parent
dies, and the zygote exits when the driver closes its end of the pipe.

``ESPNET_LP_PRELOAD=0`` turns this off (every job a fresh interpreter); if the zygote cannot
start, jobs run as plain processes.

Protocol (JSON lines): the zygote writes ``{"ready": true}`` once its imports are done; the
driver sends ``{"id", "module", "args", "log", "env", "cwd"}`` per job; the zygote answers
``{"id", "pid"}`` when it forked and ``{"id", "exit"}`` (negative: killed by that signal) when
the job ended.
"""

import json
import logging
import os
import select
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, List, Optional, Sequence

logger = logging.getLogger(__name__)

#: Modules the zygote imports once (one that fails to import is left to the job).
PRELOAD = [
    "espnet_lp.asr",
    "espnet2.tasks.asr",
    "espnet2.bin.asr_train",
    "espnet2.bin.asr_inference",
    "espnet_lp.bin.asr_inference",
    "espnet_lp.bin.al_score",
    "espnet_lp.bin.lp_refit",
]


def enabled() -> bool:
    """Whether local ``python -m`` jobs are forked from the preloaded interpreter."""
    return os.environ.get("ESPNET_LP_PRELOAD", "1") != "0" and sys.platform == "linux"


def module_of(cmd: Sequence[str]) -> Optional[str]:
    """The module of ``[sys.executable, "-m", module, ...]``, else None (run as is)."""
    if len(cmd) >= 3 and str(cmd[0]) == sys.executable and str(cmd[1]) == "-m":
        return str(cmd[2])
    return None


class ZygoteError(RuntimeError):
    """The zygote could not start or died."""


class Zygote:
    """The driver's handle on its zygote (one per driver process, started on first use)."""

    _instance: Optional["Zygote"] = None
    _lock = threading.Lock()

    def __init__(self):
        from espnet_lp.al.jobs import _die_with_parent

        self.owner = os.getpid()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent, text=True, bufsize=1)
        self.next_id = 0
        self.exits: Dict[int, int] = {}
        self.pids: Dict[int, int] = {}
        if self._read().get("ready") is not True:
            raise ZygoteError("the zygote did not start")

    @classmethod
    def get(cls) -> "Zygote":
        with cls._lock:
            z = cls._instance
            if z is None or z.owner != os.getpid() or z.proc.poll() is not None:
                cls._instance = z = cls()
            return z

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise ZygoteError("the zygote exited")
        return json.loads(line)

    def _until(self, job_id: int, key: str) -> int:
        while True:
            table = self.pids if key == "pid" else self.exits
            if job_id in table:
                return table.pop(job_id)
            msg = self._read()
            (self.pids if "pid" in msg else self.exits)[msg["id"]] = \
                msg["pid"] if "pid" in msg else msg["exit"]

    def start(self, module: str, args: List[str], log: str, env: Dict[str, str]) -> tuple:
        with self._lock:
            self.next_id += 1
            job_id = self.next_id
            request = {"id": job_id, "module": module, "args": args, "log": log, "env": env,
                       "cwd": os.getcwd()}
            try:
                self.proc.stdin.write(json.dumps(request) + "\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError) as e:
                raise ZygoteError(f"the zygote exited ({e})") from None
            return job_id, self._until(job_id, "pid")

    def wait(self, job_id: int) -> int:
        with self._lock:
            return self._until(job_id, "exit")


class PreloadedJob:
    """A running job, with the part of :class:`subprocess.Popen`'s interface jobs need."""

    def __init__(self, module: str, args: Sequence[str], log: Path,
                 env: Optional[Dict[str, str]] = None):
        self._zygote = Zygote.get()
        self._id, self.pid = self._zygote.start(
            module, [str(a) for a in args], str(Path(log).absolute()),
            dict(os.environ if env is None else env))
        self.returncode: Optional[int] = None

    def wait(self) -> int:
        """Wait for the job; its exit status (negative: killed by that signal)."""
        if self.returncode is None:
            self.returncode = self._zygote.wait(self._id)
        return self.returncode


# ---- the zygote ---------------------------------------------------------------------------
def _run_job(request: dict) -> int:  # pragma: no cover - runs in the forked job
    """In the forked child: become the job, run it, return its exit status."""
    import atexit
    import runpy
    import signal
    import traceback

    from espnet_lp.al.jobs import _die_with_parent

    _die_with_parent()
    atexit._clear()  # the zygote's exit handlers are not the job's
    for sig in (signal.SIGTERM, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    fd = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    # the import path of `python -m` started here: the working directory, then PYTHONPATH
    extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:1] = [request["cwd"], *[p for p in extra if p not in sys.path]]
    threads = request["env"].get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0 and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(threads))
    sys.argv = [request["module"], *request["args"]]
    # as in a fresh interpreter, the module exists once, as __main__ (not also preloaded)
    sys.modules.pop(request["module"], None)
    code = 0
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
    return code & 0xFF


def serve() -> None:  # pragma: no cover - the zygote process
    """The zygote's loop: import, say ready, fork a job per request, report exits."""
    import importlib

    from espnet_lp.al.jobs import _die_with_parent

    _die_with_parent()
    # the protocol gets its own descriptor: imports print to stdout (ESPnet's flash-attention
    # notice), and whatever they print goes where stderr goes (nowhere)
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # the job will import it and report the error in its log
            pass

    def send(msg: dict) -> None:
        out.write(json.dumps(msg) + "\n")
        out.flush()

    send({"ready": True})
    jobs: Dict[int, int] = {}  # pid -> id
    stdin = sys.stdin.fileno()
    buffer = b""
    while True:
        readable, _, _ = select.select([stdin], [], [], 0.1 if jobs else None)
        if readable:
            chunk = os.read(stdin, 1 << 16)
            if not chunk:  # the driver is gone: its jobs die with us (PDEATHSIG)
                os._exit(0)
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    out.close()
                    os._exit(_run_job(request))
                jobs[pid] = request["id"]
                send({"id": request["id"], "pid": pid})
        while jobs:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            if pid in jobs:
                send({"id": jobs.pop(pid), "exit": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    serve()
