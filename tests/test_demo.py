"""`make demo` and `make demo-down` (scripts/demo), run in the test's private namespace.

The proxy's nginx image is built once per machine (tests/fleet/labfleet.py, with
the host's network for debootstrap); the demo finds it already there.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hostnet import free_subnet

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "fleet"))
from labfleet import CONTROL_ROOT, build_nginx_image  # noqa: E402


def test_demo_up_serves_the_farm_from_both_nodes_and_down_removes_it(tmp_path):
    env = dict(os.environ, BALEINE_ROOT=str(CONTROL_ROOT), BALEINE_INVENTORY=str(tmp_path / "hosts"),
               DEMO_LAB_DIR=str(tmp_path / "lab"), DEMO_SUBNET=free_subnet(),
               INVOKE=str(Path(sys.executable).parent / "invoke"))  # fmt: skip
    build_nginx_image(env)
    demo = REPO / "scripts" / "demo"
    try:
        up = subprocess.run([str(demo), "up"], env=env, capture_output=True, text=True, timeout=600)
        assert up.returncode == 0, up.stdout + up.stderr
        answers = re.findall(r"^\s*\d+ webfarm v1: container (web-\w+-\d) on host (node\d)$", up.stdout, re.M)
        assert len(answers) == 12, up.stdout
        assert {host for _container, host in answers} == {"node1", "node2"}
        assert len(set(answers)) == 6  # every backend answered
        assert "make demo-down" in up.stdout and "HOST    NAME" in up.stdout
    finally:
        down = subprocess.run([str(demo), "down"], env=env, capture_output=True, text=True, timeout=300)
    assert down.returncode == 0 and "demo removed" in down.stdout, down.stdout + down.stderr
    assert not (tmp_path / "lab").exists() and not (tmp_path / "hosts" / "lab.toml").exists()
