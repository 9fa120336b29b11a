"""A real lab fleet for the integration tests: namespaces with their own sshd, driven by `invoke`."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).parent / "invoke")
# Images built once per machine and reused (debootstrap downloads nginx): the control side's state.
CONTROL_ROOT = REPO / ".cache" / "control-root"


class Lab:
    """A lab made by fleet.lab.up in a temporary directory, and `invoke` pointed at it."""

    def __init__(self, base, record):
        self.base = base
        self.dir = base / "lab"
        self.record = record
        self.env = dict(os.environ, BALEINE_INVENTORY=str(base / "hosts"), BALEINE_ROOT=str(base / "local"))

    @classmethod
    def start(cls, base, nodes):
        """A lab of `nodes` nodes on a free subnet, its files under base."""
        from hostnet import free_subnet

        from fleet import lab

        record = lab.up(nodes, subnet=free_subnet(), directory=str(base / "lab"),
                        inventory=str(base / "hosts" / "lab.toml"), say=lambda _text: None)  # fmt: skip
        return cls(base, record)

    def stop(self):
        from fleet import lab

        return lab.down(str(self.dir), say=lambda _text: None)

    def invoke(self, *args, env=None, timeout=300):
        done = subprocess.run([INVOKE, *map(str, args)], cwd=REPO, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip
        return done

    def invoke_json(self, *args, env=None):
        done = self.invoke(*args, "--json", env=env)
        assert done.stdout.strip(), f"no JSON from invoke {args}: {done.stderr}"
        return done.returncode, json.loads(done.stdout)

    def ok(self, *args):
        done = self.invoke(*args)
        assert done.returncode == 0, f"invoke {' '.join(map(str, args))}: {done.stdout}{done.stderr}"
        return done

    def local(self, *args):
        """The baleine command on the control machine itself (its own state root)."""
        done = subprocess.run([sys.executable, "-m", "fleet.node", *args, "--json"],
                              cwd=REPO, env=self.env, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["data"]

    def node_dir(self, name):
        return self.dir / name

    def tx_bytes(self, name):
        """Bytes this machine has sent to a node (its veth on the lab bridge)."""
        link = subprocess.run(["ip", "-j", "-s", "link", "show", f"lab-{name}"], capture_output=True, text=True)
        return json.loads(link.stdout)[0]["stats64"]["tx"]["bytes"]  # (/sys shows another namespace here)


def build_nginx_image(env):
    """The proxy's image, with debootstrap in the host's network namespace (it downloads packages)."""
    listed = subprocess.run([sys.executable, "-m", "fleet.node", "image", "list", "--json"], env=env, cwd=REPO,
                            capture_output=True, text=True)  # fmt: skip
    if any(item["name"] == "webfarm-nginx" for item in json.loads(listed.stdout)["data"]):
        return
    fd = int(os.environ["BALEINE_TEST_HOST_NETNS_FD"])
    argv = [
        "nsenter",
        f"--net=/proc/self/fd/{fd}",
        "--",
        sys.executable,
        "-m",
        "fleet.node",
        "image",
        "create",
        "webfarm-nginx",
        "--size",
        "400M",
        "--from",
        "debootstrap:bookworm,variant=minbase,include=nginx",
    ]
    subprocess.run(argv, env=env, cwd=REPO, pass_fds=(fd,), check=True, capture_output=True, timeout=900)
