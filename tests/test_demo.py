"""`make demo` and `make demo-down` (scripts/demo), run in the test's private namespace."""

import subprocess
import sys
from pathlib import Path

import pytest
from hostnet import free_subnet

pytestmark = pytest.mark.integration
DEMO = Path(__file__).resolve().parents[1] / "scripts" / "demo"


def test_demo_up_serves_three_pages_and_down_removes_everything(node):
    env = dict(node.env, BALEINE=str(Path(sys.executable).parent / "baleine"), DEMO_SUBNET=free_subnet())
    up = subprocess.run([str(DEMO), "up"], env=env, capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr
    for index in (1, 2, 3):
        assert f"-> hello from demo-web{index}" in up.stdout
    assert "make demo-down" in up.stdout
    assert len(node.ok("container", "list")) == 3
    again = subprocess.run([str(DEMO), "up"], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and len(node.ok("container", "list", "--all")) == 3  # rerunning is fine
    down = subprocess.run([str(DEMO), "down"], env=env, capture_output=True, text=True, timeout=300)
    assert down.returncode == 0 and "demo removed" in down.stdout
    assert node.ok("container", "list", "--all") == [] and node.ok("network", "list") == []
    assert node.ok("image", "list") == []
