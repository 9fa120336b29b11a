"""Named volumes: directories under the state root that outlive the containers using them.

`--volume NAME:/path` (a name, not a path) mounts volumes/NAME, made on
first use as with Docker, owned by the container's root under --userns.
`volume rm` and `volume prune` refuse or skip a volume any container
(created, running or exited) still names. The table volumes.csv holds
which volumes exist and since when; what a volume holds is its directory.
"""

import os

from . import state
from .errors import Conflict

VOLUMES = state.Table("volumes.csv", ("name", "created"), "volume")


def path(name):
    return state.path("volumes", name)


def ensure(name, owner=0):
    """The volume's row, made now (its directory owned by owner) when it does not exist yet."""
    with state.locked():
        row = VOLUMES.find(name)
        if row is not None:
            return row
        os.makedirs(state.path("volumes"), mode=0o711, exist_ok=True)
        os.makedirs(path(name), mode=0o755, exist_ok=True)
        os.chown(path(name), owner, owner)
        row = {"name": name, "created": state.now()}
        VOLUMES.write([*VOLUMES.read(), row])
        return row


def create(name):
    from . import parse

    parse.name(name, "volume name")
    with state.locked():  # no other command makes it between the look and the making
        if VOLUMES.find(name):
            raise Conflict(f"volume {name!r} already exists")
        row = ensure(name)
    return describe(row, users())


def users():
    """{volume name: [container names]} over every container, whatever its status."""
    from . import containers

    found = {}
    for row in state.CONTAINERS.read():
        for volume in containers.config_or_empty(row).get("volumes", []):
            if volume.get("volume"):
                found.setdefault(volume["volume"], []).append(row["name"])
    return found


def describe(row, users_by_volume):
    from .images import tree_bytes

    return {**row, "path": path(row["name"]), "bytes": tree_bytes(path(row["name"])),
            "containers": users_by_volume.get(row["name"], [])}  # fmt: skip


def list_all():
    found = users()
    return [describe(row, found) for row in VOLUMES.read()]


def inspect(name):
    return describe(VOLUMES.get(name), users())


def remove(name):
    """Delete a volume and what it holds; refused while a container names it."""
    with state.locked():
        VOLUMES.get(name)
        using = users().get(name)
        if using:
            raise Conflict(f"volume {name!r} is in use by container {', '.join(using)}: remove the container first")
        state.remove_tree(path(name))
        VOLUMES.write([row for row in VOLUMES.read() if row["name"] != name])
    return {"name": name}


def prune():
    """Delete every volume no container names; returns what each freed."""
    from .images import tree_bytes

    with state.locked():
        using = users()
        removed = []
        for row in VOLUMES.read():
            if row["name"] not in using:
                freed = tree_bytes(path(row["name"]))
                removed.append({**remove(row["name"]), "freed": freed})
        return removed
