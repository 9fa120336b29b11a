"""Registry mirrors: where pulls from a registry look first (a pull-through cache, a registry of copies).

`baleine mirror add docker.io mirror.gcr.io` keeps one row of mirrors.csv
(mirror;registry;insecure;created). A pull from that registry asks each of
its mirrors for the manifest in turn, in the order they were added, then the
registry itself: the first that has it serves the whole image. A mirror that
fails (unreachable, refusing, missing the image) is said and skipped, as
Docker and containerd do. The image records the reference and the digest, not
the mirror, so what was pulled is the same image whichever served it; every
digest is checked as for the registry. A mirror that gave the manifest but
fails on a blob is left too: the pull starts again from the next source.
A mirror may have a path, as podman's registries.conf allows: it goes before
each repository (`harbor.lan/dockerhub` serves nginx as
harbor.lan/dockerhub/library/nginx, a Harbor proxy-cache project).
Pushes never go to a mirror.
"""

from . import state
from .errors import BaleineError, Conflict, Invalid
from .registry import Client, Reference, is_repository, registry_name, resolve

COLUMNS = ("mirror", "registry", "insecure", "created")
MIRRORS = state.Table("mirrors.csv", COLUMNS, "mirror", key="mirror")


def add(registry_text, mirror_text, insecure=False):
    """Have pulls from a registry try mirror first (after the mirrors it has); the new row."""
    registry = Reference.registry(registry_text).domain
    mirror = _mirror(mirror_text)
    if mirror == registry:
        raise Invalid(f"invalid mirror {mirror_text!r}: it is the registry itself")
    with state.locked():
        rows = MIRRORS.read()
        taken = MIRRORS.find(mirror, rows)
        if taken is not None:
            raise Conflict(
                f"{mirror} already mirrors {taken['registry']}: remove it first (baleine mirror rm {mirror})"
            )
        row = {"mirror": mirror, "registry": registry, "insecure": "1" if insecure else "", "created": state.now()}
        MIRRORS.write([*rows, row])
    return describe(row)


def remove(mirror_text):
    """Forget one mirror; its row as it was."""
    mirror = _mirror(mirror_text)
    with state.locked():
        row = MIRRORS.get(mirror)
        MIRRORS.remove(mirror)
    return describe(row)


def list_all():
    return [describe(row) for row in MIRRORS.read()]


def of(registry):
    """[(mirror, insecure)] of registry (a domain as a reference gives it), in the order pulls try them."""
    registry = registry_name(registry)  # GHCR.io, index.docker.io: the names they are kept under
    return [(row["mirror"], row["insecure"] == "1") for row in MIRRORS.read() if row["registry"] == registry]


def describe(row):
    return {"mirror": row["mirror"], "registry": row["registry"], "insecure": row["insecure"] == "1",
            "created": row["created"]}  # fmt: skip


def sources(reference, wanted, username=None, password=None, insecure=False, say=None):
    """Where to pull reference from, best first: (client, image manifest, its digest, the mirror or None).

    Each mirror of its registry is asked for the manifest, with the login kept
    for that mirror; one that answers is offered. Then the registry, with the
    login given (its errors are the pull's). Lazily: a caller that succeeds
    with a mirror asks nothing more. The caller closes each client.
    """
    for mirror, unchecked in of(reference.domain):
        client = Client(reference.on(mirror), insecure=unchecked)
        try:
            manifest, digest = resolve(client, wanted)
        except BaleineError as error:
            client.close()
            if say:
                say(f"mirror {mirror}: {error.message}; trying the next")
            continue
        if say:
            say(f"{reference}: from mirror {mirror}")
        yield client, manifest, digest, mirror
    client = Client(reference, username, password, insecure)
    try:
        manifest, digest = resolve(client, wanted)
    except BaseException:
        client.close()
        raise
    yield client, manifest, digest, None


def _mirror(text):
    """A mirror as HOST[:PORT][/PATH] (a scheme and trailing / dropped): PATH goes before each repository."""
    usage = "use HOST[:PORT][/PATH], e.g. mirror.gcr.io or harbor.lan/dockerhub"
    host, _, path = text.strip().split("://", 1)[-1].strip("/").partition("/")
    try:
        domain = Reference.registry(host).domain
    except Invalid:
        raise Invalid(f"invalid mirror {text!r}: {usage}") from None
    if path and not is_repository(path):
        raise Invalid(f"invalid mirror {text!r}: its path {path!r} is not a repository path (lowercase letters, "
                      f"digits, . _ - between them, / between parts); {usage}")  # fmt: skip
    return f"{domain}/{path}" if path else domain
