"""The floor under `invoke ps`: its SSH fan-out, with `true` run on each host instead of the helper.

Same inventory, same fleet.transport (one paramiko connection per host, the
same pool), but no Invoke and no helper. bench/fleet.py times it next to
`invoke ps`: what no change to baleine's own work on the nodes could go below.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleet import inventory, transport


def main():
    loaded = inventory.load()
    hosts = loaded.select(sys.argv[1] if len(sys.argv) > 1 else "all")
    with transport.Fleet(hosts, ssh_config=loaded.ssh_config) as fleet:
        outcomes = fleet.each(lambda session: session.run(["true"]))
    failed = [f"{outcome.host.name}: {outcome.error}" for outcome in outcomes if not outcome.ok]
    failed += [f"{o.host.name}: exit {o.value.exit_code}" for o in outcomes if o.ok and o.value.exit_code != 0]
    if failed:
        sys.exit("\n".join(failed))


if __name__ == "__main__":
    main()
