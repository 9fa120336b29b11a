"""`invoke lab.up|down|status`: a fleet of namespaces with their own sshd, on this machine."""

from invoke import Collection

from .. import lab as labs
from .common import fleet_task, task

DIR_HELP = f"where the lab keeps its keys, node state and record (default {labs.DEFAULT_DIR})"


@task(help={"nodes": "how many nodes (default 3)", "subnet": "the lab's IPv4 subnet (default: a free 10.x /24)",
            "dir": DIR_HELP, "inventory": f"inventory file to write (default {labs.DEFAULT_INVENTORY})"})  # fmt: skip
@fleet_task
def up(c, nodes=3, subnet=None, dir=labs.DEFAULT_DIR, inventory=labs.DEFAULT_INVENTORY):
    """Start a local lab fleet (node1..nodeN), or restart nodes whose sshd stopped."""
    labs.up(int(nodes), subnet=subnet, directory=dir, inventory=inventory)


@task(help={"dir": DIR_HELP})
@fleet_task
def down(c, dir=labs.DEFAULT_DIR):
    """Remove the lab: its containers, sshd and cron processes, bridge, files and inventory."""
    if not labs.down(dir):
        print("no lab is up")


@task(help={"dir": DIR_HELP})
@fleet_task
def status(c, dir=labs.DEFAULT_DIR):
    """Each lab node: address, sshd and cron pids, whether SSH answers, how to enter it."""
    from .. import view

    found = labs.status(dir)
    if not found:
        print("no lab is up (invoke lab.up)")
        return
    rows = [[n["name"], n["address"], n["sshd_pid"] or "stopped", n["cron_pid"] or "stopped",
             "yes" if n["ssh"] else "no", n["enter"]] for n in found["nodes"]]  # fmt: skip
    print(view.table(("NODE", "ADDRESS", "SSHD", "CRON", "SSH", "ENTER WITH"), rows))
    print(f"subnet {found['subnet']} on bridge {found['bridge']}; inventory {found['inventory']}")


namespace = Collection("lab", up, down, status)
