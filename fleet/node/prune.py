"""Remove what nothing uses, all at once: `container prune` and `baleine prune`.

Networks, images and volumes each prune themselves (their own modules);
containers are removed one by one here, each tried whatever the others do.
"""

from . import containers, errors, state


def stopped_containers(count_freed=False):
    """Remove every container that does not run (created or exited); count_freed adds the bytes each held."""

    def remove(name):
        freed = sum(containers.space_used(containers.current(name)).values()) if count_freed else None
        removed = containers.remove(name)
        return removed if freed is None else {**removed, "freed": freed}

    rows = containers.reconcile(state.CONTAINERS.read())
    return errors.try_each([row["name"] for row in rows if row["status"] != containers.RUNNING], remove)


def everything(images=False, volumes=False):
    """Stopped containers and networks no container is on; images and volumes when asked. Adds the bytes freed."""
    from . import images as image_files
    from . import networks
    from . import volumes as named_volumes

    removed = {"containers": stopped_containers(count_freed=True), "networks": networks.prune()}
    removed["images"] = image_files.prune() if images else []  # after the containers: they freed their images
    removed["volumes"] = named_volumes.prune() if volumes else []
    return {**removed, "freed": sum(item.get("freed", 0) for items in removed.values() for item in items)}
