"""`invoke hosts` (the inventory) and `invoke hosts.trust` (record a host's key)."""

from invoke import Collection

from .. import inventory, transport
from ..errors import FleetError
from .common import HOSTS_HELP, fleet_task, task


@task(default=True, help={"hosts": HOSTS_HELP})
@fleet_task
def show(c, hosts="all"):
    """The inventory: each selected host with its address, user, groups and labels."""
    from .. import view

    loaded = inventory.load()
    members = {}
    for group in loaded.groups:
        try:
            members[group] = loaded.select(group)
        except inventory.InventoryError:
            members[group] = []  # a glob that matches no host (yet)
    rows = []
    for host in loaded.select(hosts):
        groups = [name for name in loaded.groups if host in members[name]]
        labels = ", ".join(f"{key}={value}" for key, value in host.labels.items())
        rows.append([host.name, f"{host.user}@{host.address}:{host.port}", "sudo" if host.sudo else "",
                     ",".join(groups), labels])  # fmt: skip
    print(view.table(("HOST", "SSH", "SUDO", "GROUPS", "LABELS"), rows))


@task(help={"hosts": HOSTS_HELP, "replace": "replace a key that changed (only if you know why it did)"})
@fleet_task
def trust(c, hosts, replace=False):
    """Record the hosts' SSH keys in known_hosts, after you have checked their fingerprints."""
    failed = []
    for host in inventory.load().select(hosts):
        try:
            key, done = transport.trust(host, replace=replace)
            print(f"{host.name}: {key} {done} ({host.known_hosts})")
        except (FleetError, OSError) as error:
            print(f"{host.name}: {error}")
            failed.append(host.name)
    if failed:
        raise FleetError(f"not trusted: {', '.join(failed)}")


namespace = Collection("hosts", show, trust)
