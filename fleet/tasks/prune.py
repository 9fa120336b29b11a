"""`invoke prune`: on each host, remove what nothing uses, as `baleine prune` does there."""

from .common import each_host, fleet_task, helps, removed_text, task


@task(help=helps(images="also every image no container uses", volumes="also every volume no container names"))
@fleet_task
def prune(c, hosts, images=False, volumes=False, json_=False, parallel=32, timeout=300):
    """Remove containers that do not run and networks no container is on (images, volumes: when asked)."""
    args = ["prune", *(["--images"] if images else []), *(["--volumes"] if volumes else [])]
    each_host(hosts, parallel, timeout, json_, args, _pruned)


def _pruned(removed):
    names = [f"{kind[:-1]} {item['name']}" for kind in ("containers", "networks", "images", "volumes")
             for item in removed[kind]]  # fmt: skip
    return removed_text(names, removed["freed"])
