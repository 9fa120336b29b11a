"""Crash repair, run by `baleine check`: finish or remove what a killed command left.

A baleine command killed at any point (kill -9, power cut) leaves at most an
orphan. Only what is provably this state root's is touched: its rows, its
container directories (containers/<64 hex>), its image files and build
directories, the veths named after its own containers. Rows a dead command
left 'starting' are finalized by containers.reconcile, like dead containers.
"""

import os

from . import cgroups, containers, linux, net, networks, parse, state

# Names are read with str methods and trees removed by state.remove_tree:
# re and shutil (which loads re through fnmatch) would cost every check pass,
# once a minute on every host, some 7 ms of CPU.
_HEX = frozenset("0123456789abcdef")
_BUILD_PREFIX = ".build-"


def _is_container_dir(entry):
    """containers/<64 lowercase hex digits>: a container's directory."""
    return len(entry) == 64 and _HEX.issuperset(entry)


def _builder_pid(entry):
    """The pid in images/.build-LABEL-PID-RANDOM (images.build_dir), or None for any other name."""
    head, pid, tail = ["", "", "", *entry.rsplit("-", 2)][-3:]
    if len(head) > len(_BUILD_PREFIX) and head.startswith(_BUILD_PREFIX) and parse.ascii_digits(pid) and tail:
        return pid
    return None


def run():
    """Repair what can be repaired; returns one line per action."""
    actions = []
    with state.locked():  # removals that need no write first: on a full disk they make room for the rest
        actions += _directories_without_rows()
        actions += _image_leftovers()
        actions += _half_created()
    actions += _missing_interfaces()
    actions += _make_root_only()
    return actions


def _make_root_only():
    """Make root's alone the files others could read before this release: container configs (their env holds
    secrets at times) and image files and configs (a pulled image may be private)."""
    from . import images

    files = [(f"the config of {row['name']}", containers.config_path(row)) for row in state.CONTAINERS.read()]
    for row in state.IMAGES.read():
        files += [(f"image {row['name']}", images.image_file(row["name"])),
                  (f"the config of image {row['name']}", images.config_file(row["name"]))]  # fmt: skip
    actions = []
    for what, path in files:
        try:
            if os.stat(path).st_mode & 0o077:
                os.chmod(path, 0o600)
                actions.append(f"made {what} root's alone: others could read it")
        except FileNotFoundError:
            pass  # removed meanwhile
    return actions


def _half_created():
    actions = []
    for row in state.CONTAINERS.read():
        if row["status"] == containers.CREATING and not linux.is_alive(row["pid"], row["pid_start"]):
            state.remove_tree(containers.directory(row))
            state.CONTAINERS.remove(row["id"])
            actions.append(f"removed {row['name']}: its create was interrupted")
    return actions


def _directories_without_rows():
    known = {row["id"] for row in state.CONTAINERS.read()}
    actions = []
    for entry in sorted(os.listdir(state.path("containers"))):
        if _is_container_dir(entry) and entry not in known:
            group = cgroups.Cgroup(entry)
            group.kill()
            group.remove()
            state.remove_tree(state.path("containers", entry))
            actions.append(f"removed the leftovers of container {entry[:12]} (its rm was interrupted)")
    return actions


def _image_leftovers():
    known = {row["name"] for row in state.IMAGES.read()}
    actions = []
    for entry in sorted(os.listdir(state.path("images"))):
        path = state.path("images", entry)
        builder = _builder_pid(entry)
        if builder and not os.path.exists(f"/proc/{builder}"):
            state.remove_tree(path)
            actions.append(f"removed {entry}: its image build was interrupted")
        elif entry.endswith((".ext4", ".json")) and entry.rsplit(".", 1)[0] not in known:
            os.unlink(path)
            actions.append(f"removed {entry}: no image of that name is registered")
    return actions


def _missing_interfaces():
    actions = []
    for row in state.CONTAINERS.read():
        if row["status"] != containers.RUNNING or not linux.is_alive(row["pid"], row["pid_start"]):
            continue
        missing = [plug for plug in networks.plugs_for(row) if not net.link_exists(plug["host_if"])]
        if missing:
            networks.plug(int(row["pid"]), missing)
            names = ", ".join(plug["network"] for plug in missing)
            actions.append(f"plugged {row['name']} into {names} (an add or a disconnect was interrupted)")
    return actions
