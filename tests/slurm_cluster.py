"""A real single-node Slurm cluster on localhost for tests (Debian slurm-wlm + munge).

``SlurmCluster.start`` writes a private munge key, ``slurm.conf`` and state dirs under a
temporary directory, starts ``munged``, ``slurmctld`` and ``slurmd`` (as root, on free
localhost ports) and waits until the node takes jobs; ``stop`` kills exactly those processes
(by PID) and the directory goes with the test's tmp path. Clients find the cluster through
``SLURM_CONF`` in :attr:`env`.
"""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional

BINARIES = ("munged", "slurmctld", "slurmd", "srun", "sinfo")


def why_unavailable() -> Optional[str]:
    """None when a cluster can be started here, else the reason."""
    missing = [b for b in BINARIES if shutil.which(b) is None
               and not Path("/usr/sbin", b).exists()]
    if missing:
        return (f"Slurm is not installed ({', '.join(missing)} missing; tools/run_tests.sh "
                "installs Debian's slurm-wlm and munge when it runs as root)")
    if os.geteuid() != 0:
        return "starting slurmd needs root"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


class SlurmCluster:
    """slurmctld + one slurmd (this host) + munged, private to one test session."""

    def __init__(self, root: Path, cpus: int = 2):
        self.root = Path(root)
        self.cpus = cpus
        self.host = socket.gethostname().split(".")[0]
        self.procs: List[subprocess.Popen] = []
        self.conf = self.root / "slurm.conf"
        self.env: Dict[str, str] = {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self, timeout: float = 60.0) -> "SlurmCluster":
        r = self.root
        for d in ("munge", "state", "spool", "log"):
            (r / d).mkdir(parents=True, exist_ok=True)
        os.chmod(r / "munge", 0o700)
        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        sock = r / "munge" / "munge.socket"
        self._spawn([_binary("munged"), "--foreground", "--force", f"--key-file={key}",
                     f"--socket={sock}", f"--pid-file={r / 'munge' / 'munged.pid'}",
                     f"--log-file={r / 'log' / 'munged.log'}",
                     f"--seed-file={r / 'munge' / 'munged.seed'}"], "munged")
        self._wait(lambda: sock.exists(), timeout, "munged did not create its socket")
        self.conf.write_text(f"""ClusterName=espnetlptest
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}
SlurmctldPidFile={r / 'slurmctld.pid'}
SlurmdPidFile={r / 'slurmd.pid'}
SlurmctldLogFile={r / 'log' / 'slurmctld.log'}
SlurmdLogFile={r / 'log' / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmdTimeout=60
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} State=UNKNOWN
PartitionName=test Nodes={self.host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
""")
        self._spawn([_binary("slurmctld"), "-D", "-i", "-f", str(self.conf)], "slurmctld")
        self._spawn([_binary("slurmd"), "-D", "-f", str(self.conf), "-N", self.host], "slurmd")
        self._wait(self._node_ready, timeout, "the Slurm node did not become idle")
        return self

    def _spawn(self, cmd: List[str], name: str) -> None:
        log = open(self.root / "log" / f"{name}.out", "w")
        self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                           env=self.env, stdin=subprocess.DEVNULL))

    def _node_ready(self) -> bool:
        out = subprocess.run([_binary("sinfo"), "-h", "-o", "%t"], env=self.env,
                             capture_output=True, text=True)
        return out.returncode == 0 and out.stdout.strip() in ("idle", "mix", "alloc")

    def _wait(self, ready, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if ready():
                return
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{what}: {p.args[0]} exited ({p.returncode}); logs in "
                                       f"{self.root / 'log'}: {self.logs()}")
            time.sleep(0.5)
        raise RuntimeError(f"{what} within {timeout} s; logs: {self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                         for p in sorted((self.root / "log").glob("*")))

    def stop(self) -> None:
        """Stop the daemons this cluster started (by PID), the newest first."""
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
