"""Invoke collections; tasks.py at the repository root only assembles them."""

from invoke import Collection

from .. import ship
from . import container, health, hosts, image, lab, mirror, network, registry
from .common import checked, fleet_task, task
from .deploy import deploy_, rollback
from .prune import prune
from .views import df, events, images, info, networks, ps


@task(help={"output": "where to write the zipapp (default: build/baleine.pyz)"})
@fleet_task
def build(c, output="build/baleine.pyz"):
    """Build the node helper zipapp (reproducible; prints its sha256)."""
    import os

    from ..node import state

    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    checked(state.writable_file, output, "baleine.pyz")  # replaced whole: never a device or a pipe
    print(f"{ship.build(output)}  {output}")


namespace = Collection(build, ps, images, networks, events, df, info, prune, rollback, deploy=deploy_)
for module in (container, image, mirror, registry, network, health, hosts, lab):
    namespace.add_collection(module.namespace)
