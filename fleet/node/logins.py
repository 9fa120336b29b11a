"""Registry logins kept on this host: `baleine login` and `logout`, read by every pull and push.

They live in $BALEINE_ROOT/auth.json, in the format of Docker's config.json
({"auths": {REGISTRY: {"auth": base64 of USER:PASSWORD}}}), root's alone
(mode 0600). Like Docker's file it is not encrypted: the mode is the guard.
`image pull`, `image push` and `container run --pull` use the login kept for
the image's registry when no --username is given; failing that, the one
Docker's own file ($DOCKER_CONFIG/config.json, else ~/.docker/config.json,
only read) gives, as Docker reads it: the credential helper credHelpers names
for the registry, else the credsStore helper, else the login inline in auths.
A helper is the program docker-credential-NAME (ecr-login, gcloud, pass...),
asked with `get` and the registry on stdin. An identity token (`identitytoken`
in auths, or a helper's user `<token>`) is found as the user registry.IDENTITY
with the token as its password: the client trades it for Bearer tokens.
"""

import base64
import os

from . import jsonlite, registry, state
from .errors import BaleineError, NotFound
from .registry import registry_name

FILE = "auth.json"
DOCKER_HUB_KEY = "https://index.docker.io/v1/"  # Docker's own key for Docker Hub; kept so either file serves both


def find(domain):
    """(username, password, where from) of the login for registry domain, or None."""
    domain = registry_name(domain)
    found = _auths(_document(state.path(FILE))).get(domain)
    if found:
        return (*found, state.path(FILE))
    docker_file = _docker_config()
    docker = _document(docker_file, lenient=True)
    helpers = {registry_name(key): name for key, name in (docker.get("credHelpers") or {}).items()}
    helper = helpers.get(domain) or docker.get("credsStore")
    if helper:
        found = _from_helper(str(helper), _key(domain))
        return (*found, f"docker-credential-{helper}") if found else None
    found = _auths(docker).get(domain)
    return (*found, docker_file) if found else None


HELPER_TIMEOUT = 30  # seconds: a helper may ask a cloud's API (ecr-login, gcloud)


def _from_helper(name, server):
    """(username, secret) a Docker credential helper gives for server; None when it has none."""
    import subprocess

    program = f"docker-credential-{name}"
    try:
        done = subprocess.run([program, "get"], input=server.encode(), capture_output=True, timeout=HELPER_TIMEOUT)
    except FileNotFoundError:
        raise BaleineError(f"Docker's config names the credential helper {name!r} for {server}, but "
                           f"{program} is not installed: install it, or change credHelpers/credsStore "
                           "there") from None  # fmt: skip
    except subprocess.TimeoutExpired:
        raise BaleineError(f"{program} gave no answer for {server} within {HELPER_TIMEOUT} s") from None
    said = (done.stdout or done.stderr).decode(errors="replace").strip()
    if done.returncode != 0:
        if "credentials not found" in said.lower():  # the helpers' own words for "no login here"
            return None
        raise BaleineError(f"{program} failed for {server}: {said.splitlines()[-1] if said else done.returncode}")
    try:
        answer = jsonlite.loads(done.stdout)
        username, secret = answer["Username"], answer["Secret"]
    except (ValueError, KeyError, TypeError):
        raise BaleineError(f"{program} answered {server} with something other than its JSON") from None
    if not username or not secret:
        return None
    return username, secret  # a user registry.IDENTITY says secret is an identity token


def listed():
    """[{registry, username}] of the logins `baleine login` kept, by registry (an identity token's user: <token>)."""
    kept = _auths(_document(state.path(FILE)))
    return [{"registry": domain, "username": user} for domain, (user, _) in sorted(kept.items())]


def save(domain, username, password):
    """Keep (or replace) the login for registry domain."""
    _replace(domain, {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()})


def remove(domain):
    """Forget the login for registry domain; whether there was one."""
    return _replace(domain, None)


def _replace(domain, entry):
    """Put entry as domain's login in auth.json, or drop it (None); whether there was one."""
    with state.locked():
        document = _document(state.path(FILE))
        auths = document.get("auths", {})
        kept = {key: value for key, value in auths.items() if registry_name(key) != domain}
        had = len(kept) < len(auths)
        if entry is None and not had:
            return False
        document["auths"] = {**kept, _key(domain): entry} if entry else kept
        state.write_atomic(state.path(FILE), jsonlite.dumps(document, indent=2) + "\n", mode=0o600)
        return had


def login(text, username, password, insecure=False):
    """Check a login with the registry (as `docker login` does), then keep it; {registry, username, checked}.

    Without username, the login pulls would use (kept, or Docker's) is checked
    again, and left where it is. checked is False when the registry asked for
    no login at all: it is kept, but nothing vouched for it.
    """
    reference = registry.Reference.registry(text)
    given = username is not None
    if not given:
        found = find(reference.domain)
        if found is None:
            raise NotFound(f"no login for {reference.domain} is kept: give --username (and --password-stdin)")
        username, password, _where = found
    client = registry.Client(reference, username, password, insecure)
    try:
        checked = client.check_login()
    finally:
        client.close()
    if given:
        save(reference.domain, username, password)
    return {"registry": reference.domain, "username": username, "checked": checked}


def logout(text):
    """Forget the login kept for a registry; {registry, removed}."""
    domain = registry.Reference.registry(text).domain
    return {"registry": domain, "removed": remove(domain)}


def _key(domain):
    return DOCKER_HUB_KEY if domain == registry.DOCKER_HUB else domain


def _docker_config():
    directory = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(directory, "config.json")


def _document(path, lenient=False):
    """The JSON object in path ({} when there is none); a broken file is an error unless lenient (not ours)."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = jsonlite.load(handle)
        if not isinstance(document, dict) or not isinstance(document.get("auths", {}), dict):
            raise ValueError("not an object with an auths object")
        return document
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        if lenient:
            return {}
        raise BaleineError(f"cannot read the registry logins in {path}: {error}; fix or remove the file") from None


def _auths(document):
    """{registry: (username, password)} of the inline logins in a Docker-format document.

    An identity token wins over the user and password beside it, as in Docker:
    (registry.IDENTITY, the token).
    """
    found = {}
    for key, entry in document.get("auths", {}).items():
        if isinstance(entry, dict) and isinstance(entry.get("identitytoken"), str) and entry["identitytoken"]:
            found[registry_name(key)] = (registry.IDENTITY, entry["identitytoken"])
            continue
        try:
            username, colon, password = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
        except (KeyError, TypeError, ValueError):
            continue  # a credential helper's entry: no password here
        if colon and username:
            found[registry_name(key)] = (username, password)
    return found
