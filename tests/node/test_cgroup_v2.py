"""cgroup v2 for real: the limit checks run inside a small VM booted on a pure-v2 kernel (tests/vm.py)."""

from pathlib import Path

import pytest
import vm

pytestmark = pytest.mark.integration
CHECKS = Path(__file__).resolve().parents[1] / "vm_inside.py"


def test_limits_hold_on_a_real_cgroup_v2_kernel(zipapp):
    vmlinuz, initramfs = vm.build(zipapp, CHECKS)
    console = vm.boot(vmlinuz, initramfs)
    report = [line for line in console.splitlines() if line.startswith(("PASS ", "FAIL ", "vm: ", "setup: "))]
    failed = [line for line in report if line.startswith("FAIL ")]
    passed = [line for line in report if line.startswith("PASS ")]
    assert not failed and len(passed) == 11, "\n".join(report) or console[-4000:]
    assert "vm: 11 passed, 0 failed" in report
