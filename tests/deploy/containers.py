"""Build the images with deploy/image.sh and run them with buildah, as the task definitions run them.

Here there is no Docker daemon and `podman run` does not work on this kernel: `buildah run
--isolation=chroot --network host` runs a built image's process on the host's network, like the awsvpc task
whose containers share one loopback. Each container gets what its task definition mounts (an empty /tmp,
nginx's cache folder) as fresh host folders. A container's processes are the descendants of buildah's
`buildah-chroot-exec` (buildah's own runtime processes are not part of the container, as runc is not).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from devenv.servers import children

ROOT = Path(__file__).resolve().parents[2]
TAG = os.environ.get("IMAGE_TAG", "signup:local")
CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def buildah(*args: str, timeout: int = 120) -> str:
    proc = subprocess.run(["buildah", *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        raise RuntimeError(f"buildah {args[0]} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout


def build_images() -> str:
    """Run deploy/image.sh (cached layers make a rebuild take seconds); return what it printed."""
    proc = subprocess.run([str(ROOT / "deploy" / "image.sh"), TAG], cwd=ROOT, capture_output=True, text=True,
                          timeout=3600)  # fmt: skip
    if proc.returncode:
        raise RuntimeError(f"deploy/image.sh exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


@dataclass
class Image:
    name: str

    def __post_init__(self) -> None:
        self.info = json.loads(buildah("inspect", "--type", "image", self.name))

    @property
    def config(self) -> dict:
        return self.info["Docker"]["config"]

    @property
    def layers(self) -> int:
        return len(self.info["Docker"]["rootfs"]["diff_ids"])

    @property
    def size(self) -> int:
        """Bytes, uncompressed (what the layers take once unpacked)."""
        out = subprocess.run(["podman", "image", "inspect", "--format", "{{.Size}}", self.name],
                             capture_output=True, text=True, check=True)  # fmt: skip
        return int(out.stdout.strip())

    @property
    def command(self) -> list[str]:
        """What the container runs when its task definition gives no command: ENTRYPOINT + CMD."""
        return [*(self.config.get("Entrypoint") or []), *(self.config.get("Cmd") or [])]

    @property
    def healthcheck(self) -> list[str]:
        test = self.config["Healthcheck"]["Test"]
        return ["sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]


@dataclass
class Container:
    """One working container of an image; run() starts its main process, exec() a one-off beside it."""

    image: Image
    name: str
    workdir: Path
    mounts: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        with contextlib.suppress(RuntimeError):
            buildah("rm", self.name)  # left over from an interrupted run
        self.id = buildah("from", "--pull-never", "--name", self.name, self.image.name).strip()
        self.volumes = []
        for path in self.mounts:  # each an empty folder, as the task's volumes are
            host = self.workdir / f"{self.name}{path.replace('/', '-')}"
            host.mkdir(parents=True)
            host.chmod(0o1777)
            self.volumes += ["--volume", f"{host}:{path}:rw"]
        self.log = self.workdir / f"{self.name}.log"

    def run_args(self, env: dict[str, str], *options: str) -> list[str]:
        """`buildah run` with this container's mounts and environment (plus `env`), up to the command."""
        flags = [f"--env={k}={v}" for k, v in {**self.env, **env}.items()]
        return ["buildah", "run", "--isolation=chroot", "--network=host", *self.volumes, *flags, *options, self.name,
                "--"]  # fmt: skip

    def run(self, command: list[str]) -> subprocess.Popen:
        """Start the container's main process as the image's USER, its stdout and stderr that user's.

        runc (Docker, ECS) hands a container stdio that its user may reopen by path (nginx opens
        /dev/stdout for its access log); buildah's chroot runtime hands root's pipes. So this one step runs
        as root, as runc does it, and setpriv then drops to the image's user before the image's command.
        """
        user = self.image.config.get("User") or "root"
        drop = ('chown "$0" /proc/self/fd/1 /proc/self/fd/2 && '
                'exec setpriv --reuid "$0" --regid "$(id -g "$0")" --init-groups "$@"')  # fmt: skip
        args = [*self.run_args({}, "--user=root"), "sh", "-c", drop, user, *command]
        self.proc = subprocess.Popen(args, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        return self.proc

    def exec(self, command: list[str], env: dict | None = None, *options: str) -> subprocess.CompletedProcess:
        """Run a one-off beside the main process (as the image's user unless `options` say --user)."""
        return subprocess.run([*self.run_args(env or {}, *options), *command], capture_output=True, text=True,
                              timeout=300)  # fmt: skip

    def processes(self) -> dict[int, tuple[int, str]]:
        """pid -> (real uid, command line) of every process in the container's main process tree."""
        if self.proc is None:
            return {}
        found, todo = {}, children(self.proc.pid)
        while todo:
            pid = todo.pop()
            todo += children(pid)
            with contextlib.suppress(OSError):
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                status = Path(f"/proc/{pid}/status").read_text()
                uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
                # Not the container's: buildah's runtime (and its chroot helper, re-executed as
                # "chrootuser-open" while it opens the container's stdio), run()'s root step before setpriv,
                # exited processes.
                if cmd and not cmd.startswith(("buildah", "chrootuser-open", 'sh -c chown "$0"')):
                    found[pid] = (uid, cmd)
        return found

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self, sig: str = "TERM") -> None:
        """Signal the container's processes (as ECS would), wait for buildah run to end, remove the container."""
        if self.proc and self.proc.poll() is None:
            for pid in self.processes():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, getattr(signal, f"SIG{sig}"))
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(RuntimeError):
            buildah("rm", self.name)


def wait_until(predicate, timeout: float, what: str, container: Container | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if container and container.proc and container.proc.poll() is not None:
            raise AssertionError(f"{container.name} exited {container.proc.returncode}:\n{container.tail()}")
        with contextlib.suppress(OSError):
            value = predicate()
            if value:
                return value
        time.sleep(0.2)
    raise AssertionError(
        f"timed out after {timeout:.0f} s waiting for {what}" + (f":\n{container.tail()}" if container else "")
    )


def have_buildah() -> bool:
    return shutil.which("buildah") is not None
