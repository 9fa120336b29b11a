"""`baleine df`: where the state root's disk space goes, and what could be given back.

Each file counts the blocks it holds, so reflinked copies, which share
blocks with their image, count them again: the total can exceed what the
filesystem lost. Reclaimable is what `image prune` (images no container
uses), `container prune` (containers not running, with their logs) and
`volume prune` (volumes no container names) free.
"""

import os

from . import state


def summary():
    """Space taken by images, container disks, volumes, logs and history files; what prunes free; the free space."""
    from . import containers, events, images, logs, usage, volumes

    state.ensure_layout()  # a host nothing was done on yet: its root, as the first command would make it
    image_rows, container_rows = state.IMAGES.read(), containers.reconcile(state.CONTAINERS.read())
    used_images = {row["image"] for row in container_rows}
    image_bytes = {row["name"]: state.allocated(images.image_file(row["name"])) for row in image_rows}
    held = {row["name"]: containers.space_used(row) for row in container_rows}
    idle = [row["name"] for row in container_rows if row["status"] != containers.RUNNING]
    history = [state.path(name + suffix) for name in (events.FILE, "check.log") for suffix in ("", logs.OLDER)]
    history.append(state.path(usage.LEGACY))
    named = volumes.list_all()
    info = os.statvfs(state.root())
    return {
        "root": state.root(),
        "images": {"count": len(image_rows), "bytes": sum(image_bytes.values()),
                   "reclaimable": sum(size for name, size in image_bytes.items() if name not in used_images)},
        "containers": {"count": len(container_rows), "bytes": sum(item["disk_bytes"] for item in held.values()),
                       "reclaimable": sum(held[name]["disk_bytes"] + held[name]["log_bytes"] for name in idle)},
        "volumes": {"count": len(named), "bytes": sum(item["bytes"] for item in named),
                    "reclaimable": sum(item["bytes"] for item in named if not item["containers"])},
        "logs": {"bytes": sum(item["log_bytes"] for item in held.values())},
        "history": {"bytes": sum(map(state.allocated, history)) + images.tree_bytes(state.path(usage.DIRECTORY))},
        "free": info.f_bavail * info.f_frsize,
        "size": info.f_blocks * info.f_frsize,
    }  # fmt: skip
