"""container commit: a new image from a container's disk, frozen while copied if it runs.

consistent_disk gives the same view of a disk to `container export`.
"""

import contextlib
import os

from . import events, images, linux, parse, state
from .containers import (
    RUNNING,
    cgroup_of,
    current,
    directory,
    hold_disk,
    read_config,
    refuse_if_busy,
    refuse_if_half_created,
)


def commit(ref, image_name):
    """A new image from a container's disk: stopped, or frozen while its disk is copied."""
    parse.name(image_name, "image name")
    images.refuse_taken(image_name)  # before any copy; register refuses it again, under the lock
    with images.build_dir(image_name) as work, consistent_disk(ref, work) as (row, disk, copied):
        if copied:  # the frozen copy: its journal replayed, so that the image mounts read-only (export)
            staged = disk
            images.replay_journal(staged, images.rootfs_dir(work))
        else:
            staged = os.path.join(work, "image.ext4")
            images.copy_file(disk, staged)
        image = _register(row, image_name, staged)
    events.record("commit", row, image=image_name)
    return image


def _register(row, image_name, staged):
    """Register the disk copy staged as image_name, with the container's settings as its config."""
    config = read_config(row)
    image_config = {"Cmd": config["command"], "Env": config["env"], "WorkingDir": config["workdir"],
                    "User": config["user"], "StopSignal": config.get("stop_signal", "SIGTERM"),
                    "Parent": row["image"]}  # fmt: skip
    if config.get("health"):
        from .health import to_image

        image_config["Healthcheck"] = to_image(config["health"])
    source = f"commit:{row['name']} (from {row['image']})"
    return images.register(image_name, staged, {k: v for k, v in image_config.items() if v}, source)


@contextlib.contextmanager
def consistent_disk(ref, work):
    """(row, path of its disk as it is now, whether that is a copy) while the caller reads it.

    A stopped container's own disk, held shared so that no start nor `cp`
    mounts it meanwhile; a running one's copy, made while it is frozen, in
    work: taken from a live filesystem, its journal is yet to be replayed.
    """
    with state.locked():
        row = current(ref)
        refuse_if_busy(row)
        refuse_if_half_created(row)
        held = hold_disk(row, shared=True) if row["status"] != RUNNING else None
    try:
        if held is None:
            staged = os.path.join(work, "disk.ext4")
            copy_frozen(row, staged)
            yield row, staged, True
        else:
            yield row, os.path.join(directory(row), "disk.ext4"), False
    finally:
        if held is not None:
            os.close(held)


def copy_frozen(row, staged):
    """Freeze the container, flush its filesystem, copy the disk, let it go."""
    group = cgroup_of(row)
    paused = group.frozen()  # by `container pause`: it stays so
    if not paused:
        group.freeze()
    try:
        root = os.open(f"/proc/{row['pid']}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            linux.syncfs(root)  # the container's ext4, seen through its own root
        finally:
            os.close(root)
        images.copy_file(os.path.join(directory(row), "disk.ext4"), staged)
    finally:
        if not paused:
            group.freeze(frozen=False)
