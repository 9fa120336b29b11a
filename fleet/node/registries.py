"""Registry settings kept on this host: `baleine registry insecure|secure|list` (registries.csv).

`baleine registry insecure registry.lan:5000` keeps one row (registry;insecure;
created), as Docker's `insecure-registries` and podman's registries.conf
`insecure = true` do: every pull, push, login check and `run --pull` from that
registry, and its use as a mirror, then accept plain HTTP or an unchecked
certificate, as --insecure does for one command. A private registry on a LAN
without TLS is then usable where no --insecure can be given (`run --pull`,
deploy's `pull:`). `registry secure` forgets it. Loopback registries are
insecure already, as in Docker. `registry list` shows every registry this
host knows of: its kept login, its mirrors, and whether it is insecure.
"""

from . import state
from .registry import Reference, registry_name

COLUMNS = ("registry", "insecure", "created")
REGISTRIES = state.Table("registries.csv", COLUMNS, "registry", key="registry")


def insecure(domain):
    """Whether registry domain (as a reference gives it) is kept insecure."""
    domain = registry_name(domain)
    return any(row["registry"] == domain and row["insecure"] == "1" for row in REGISTRIES.read())


def make_insecure(text):
    """Keep registry text insecure; {registry, insecure, changed}."""
    domain = Reference.registry(text).domain
    with state.locked():
        rows = REGISTRIES.read()
        if REGISTRIES.find(domain, rows) is not None:
            return {"registry": domain, "insecure": True, "changed": False}
        REGISTRIES.write([*rows, {"registry": domain, "insecure": "1", "created": state.now()}])
    return {"registry": domain, "insecure": True, "changed": True}


def make_secure(text):
    """Forget that registry text is insecure (HTTPS, certificates checked); {registry, insecure, changed}."""
    domain = Reference.registry(text).domain
    with state.locked():
        rows = REGISTRIES.read()
        kept = [row for row in rows if row["registry"] != domain]
        if len(kept) < len(rows):
            REGISTRIES.write(kept)
    return {"registry": domain, "insecure": False, "changed": len(kept) < len(rows)}


def list_all():
    """[{registry, login, mirrors, insecure}] of every registry this host keeps something for, by name.

    insecure: kept so, or loopback (insecure whatever is kept).
    """
    from . import logins, mirrors

    users = {item["registry"]: item["username"] for item in logins.listed()}
    mirrored = {}
    for item in mirrors.list_all():
        mirrored.setdefault(item["registry"], []).append(item["mirror"])
    flagged = {row["registry"] for row in REGISTRIES.read() if row["insecure"] == "1"}
    names = sorted({*users, *mirrored, *flagged})
    return [{"registry": name, "login": users.get(name), "mirrors": mirrored.get(name, []),
             "insecure": name in flagged or Reference.registry(name).loopback} for name in names]  # fmt: skip
