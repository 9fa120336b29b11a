"""Images: one ext4 filesystem file each, plus its config (Cmd, Env...) as JSON.

An image file is never changed once registered; containers run on copies.
It is built in a work directory under images/ and renamed into place only
when complete, so a failed or interrupted build registers nothing.
"""

import errno
import os

from . import jsonlite, linux, parse, state
from .errors import BaleineError, CommandFailed, Conflict, Invalid, Missing, NoSpace, NotFound

MIN_SIZE = 8 << 20
FICLONE = 0x40049409  # ioctl: share extents with another file (btrfs, xfs)
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SOURCE_HELP = (
    "busybox | debootstrap:SUITE[,variant=V][,include=a+b][,mirror=URL] | a directory | a .tar/.tar.gz root filesystem"
)


def build_dir(label):
    """`with build_dir("pull") as work:` a scratch directory beside the images for one build, removed after,
    whatever happens.

    The builder's pid in its name lets check tell a live build from an abandoned one.
    """
    return _ScratchDirectory(label)


class _ScratchDirectory:
    """A class, not a contextlib generator: importing contextlib costs every command 3 ms."""

    def __init__(self, label):
        self.label = label
        self.work = None

    def __enter__(self):
        import tempfile

        self.work = tempfile.mkdtemp(prefix=f".build-{self.label}-{os.getpid()}-", dir=state.path("images"))
        return self.work

    def __exit__(self, *_):
        state.remove_tree(self.work)
        return False


def rootfs_dir(work):
    """work/rootfs, empty, mode 755: the tree an image is built from, or where an ext4 file is mounted."""
    path = os.path.join(work, "rootfs")
    os.mkdir(path, 0o755)
    return path


def refuse_taken(name):
    """Conflict if an image is called name already."""
    if state.IMAGES.find(name):
        raise Conflict(f"image {name!r} already exists (remove it first: baleine image rm {name})")


def image_file(name):
    return state.path("images", f"{name}.ext4")


def config_file(name):
    return state.path("images", f"{name}.json")


def short_id(row):
    return row["digest"].split(":")[-1][:12]


def get(name):
    """The image's row, or NotFound naming the known images."""
    return state.IMAGES.get(name)


PULL_POLICIES = ("missing", "always", "never")


def for_container(text, policy="never", say=None):
    """The image a container names: by its name, else the one pulled from that reference (nginx:1.27), as in Docker.

    policy (--pull), for a reference (it has ':', '/' or '@': never a name):
    missing pulls it when nothing was, always asks the registry each time (up
    to date, or refused when the tag moved), never pulls. A bare word is a name.
    NotFound naming the known images; for a reference not pulled, saying how.
    """
    if policy not in PULL_POLICIES:
        raise Invalid(f"invalid --pull {policy!r}: use {', '.join(PULL_POLICIES)}")
    rows = state.IMAGES.read()
    row = state.IMAGES.find(text, rows)
    if row is not None:
        return row
    pulled = _pulled_from(text, rows)
    if any(mark in text for mark in ":/@"):
        if policy == "always" or (policy == "missing" and pulled is None):
            return pull(text, name=pulled["name"] if pulled else None, say=say)
        if pulled is None:
            raise NotFound(f"no image was pulled from {text!r}: pull it first (baleine image pull {text}), "
                           "or give --pull missing")  # fmt: skip
    return pulled or state.IMAGES.get(text, rows)


def _pulled_from(text, rows):
    """The row of the image pulled from reference text, None if none (or text is no reference)."""
    from . import registry

    try:
        wanted = registry.Reference(text)
    except Invalid:
        return None
    found = []
    for row in rows:
        if not row["source"].startswith("pull:"):
            continue
        had = registry.Reference(row["source"].removeprefix("pull:"))
        if (had.domain, had.repository) == (wanted.domain, wanted.repository) and (
            had.digest == wanted.digest if wanted.digest else had.tag == wanted.tag
        ):
            found.append(row["name"])
    if len(found) > 1:
        raise Conflict(f"several images were pulled from {text!r} ({', '.join(found)}): name the one to use")
    return state.IMAGES.find(found[0], rows) if found else None


def config(name):
    """The image's stored config (Cmd, Entrypoint, Env, WorkingDir, User)."""
    try:
        return state.read_json(config_file(name), "restore it, or create the image again")
    except FileNotFoundError:
        return {}


def keep_in_config(name, digest, key, value):
    """Set key in image name's config file while the image is the file of that digest; whether it was."""
    with state.locked():
        row = state.IMAGES.find(name)
        if row is None or row["digest"] != digest:
            return False  # removed or replaced meanwhile: what was learnt is about another file
        write_config(name, {**config(name), key: value})
    return True


def write_config(name, document):
    """Replace image name's config file, root's alone as its image file is."""
    state.write_atomic(config_file(name), jsonlite.dumps(document, indent=2, sort_keys=True) + "\n", mode=0o600)


def create(name, size_text, source):
    """Build image `name` of `size_text` bytes from `source`; returns its row."""

    parse.name(name, "image name")
    size = parse.size(size_text, "image size", minimum=MIN_SIZE)
    if not source:
        raise Invalid(f"missing --from: use {SOURCE_HELP}")
    state.ensure_layout()
    refuse_taken(name)
    with build_dir(name) as work:
        staged = os.path.join(work, "image.ext4")
        sparse_file(staged, size)  # a size too large for this filesystem is refused before a long debootstrap
        rootfs, image_config, label = populate(source, work)
        make_filesystem(rootfs, staged, size)
        return register(name, staged, image_config, label)


def populate(source, work):
    """The root tree for source, built under work when needed.

    Returns (root directory, image config, source label for the table).
    A directory is used where it stands: mkfs.ext4 -d copies it.
    """
    if os.path.isdir(source):
        tree, state_root = os.path.realpath(source), os.path.realpath(state.root())
        if os.path.commonpath([tree, state_root]) == tree:  # mkfs would copy the image it is writing
            raise Invalid(f"invalid image source {source!r}: it holds baleine's state root {state_root}")
        return os.path.abspath(source), {}, f"dir:{os.path.abspath(source)}"
    rootfs = rootfs_dir(work)
    if source == "busybox":
        return rootfs, populate_busybox(rootfs), "busybox"
    if source.startswith("debootstrap:"):
        return rootfs, populate_debootstrap(source[len("debootstrap:") :], rootfs), source
    if os.path.isfile(source):
        from . import archive

        archive.extract_rootfs(source, rootfs)
        return rootfs, {}, f"tar:{os.path.abspath(source)}"
    raise Invalid(f"invalid image source {source!r}: use {SOURCE_HELP}")


def import_archive(source, name=None, tag=None, size_text=None):
    """Flatten a docker-archive or OCI archive (a path, or '-' for stdin) into image `name`."""
    from . import imports

    state.ensure_layout()
    with build_dir("import") as work:
        path = _spool_stdin(work) if source == "-" else source
        if os.path.isdir(path):
            raise Invalid(f"{source!r} is a directory: give an archive file (podman save, docker save), or - for stdin")
        if not os.path.isfile(path):
            raise Invalid(f"no such archive file {source!r}")
        archived = imports.Archive(path)
        try:
            chosen, image = imports.choose(imports.candidates(archived), tag)
            name = parse.name(name or _name_from_reference(chosen), "image name")
            refuse_taken(name)
            rootfs, image_config = _flatten(work, archived, image)
        finally:
            archived.close()
        return _register_tree(
            work, rootfs, name, size_text, image_config, f"import:{chosen or os.path.basename(source)}"
        )


def pull(text, name=None, size_text=None, platform_text=None, username=None, password=None, insecure=False, say=None):
    """Make image `name` of a registry's image (its layers flattened), as `image import` does of an archive.

    Its source records the digest of the image manifest pulled. Pulling the same
    reference into the same name again fetches only the manifest: the same
    digest is up to date, another one is refused (the name is the old image's).
    Returns the image's row, with up_to_date and the mirror that served it (None:
    the registry). say(line) hears of each layer as it comes.
    """
    import contextlib

    from . import mirrors, registry

    reference = registry.Reference(text)
    wanted = registry.platform(platform_text)
    name = parse.name(name or reference.short_name(), "image name")
    if size_text:
        parse.size(size_text, "image size", minimum=MIN_SIZE)  # refused before anything is fetched
    label = f"pull:{reference.named()}@"
    existing = state.IMAGES.find(name)
    if existing is None or not existing["source"].startswith(label):
        refuse_taken(name)
    state.ensure_layout()
    for client, manifest, digest, mirror in mirrors.sources(reference, wanted, username, password, insecure, say):
        with contextlib.closing(client):
            if existing is not None:
                return {**existing, "up_to_date": _same_pull(existing, name, label + digest), "mirror": mirror}
            try:
                row = _pull_layers(client, manifest, name, size_text, label + digest, say)
            except BaleineError as error:
                if mirror is None or isinstance(error, (NoSpace, Conflict)):  # nothing another source would change
                    raise
                if say:  # a mirror that had the manifest but failed on a blob: the next source, as containerd does
                    say(f"mirror {mirror} failed midway: {error.message}; trying the next")
                continue
            return {**row, "up_to_date": False, "mirror": mirror}


def _pull_layers(client, manifest, name, size_text, source, say):
    """Image `name` of the manifest's layers from client's registry; its row."""
    from . import imports, registry

    with build_dir("pull") as work:
        blobs = registry.Blobs(client, manifest, say, spool=work)
        try:
            rootfs, image_config = _flatten(work, blobs, imports.image_of(manifest))
        finally:
            blobs.close()
        return _register_tree(work, rootfs, name, size_text, image_config, source)


def _same_pull(existing, name, source):
    """True when the image already holds what the registry has now; Conflict otherwise."""
    if existing["source"] == source:
        return True
    held, now = existing["source"].removeprefix("pull:"), source.rpartition("@")[2]
    raise Conflict(
        f"image {name!r} is {held}; the registry now has {now}: "
        f"remove it first (baleine image rm {name}) or pull under another --name"
    )


def _flatten(work, source, image):
    """(rootfs, image config): the image's layers applied in order under work/rootfs, digests checked."""
    from . import archive, imports

    rootfs = rootfs_dir(work)
    tree = archive.Tree(rootfs)
    try:
        return rootfs, imports.apply(source, image, tree)
    finally:
        tree.close()


def _register_tree(work, rootfs, name, size_text, image_config, label):
    """The image file of rootfs (sized to fit unless --size said), registered under name."""
    used = tree_bytes(rootfs)
    size = parse.size(size_text, "image size", minimum=MIN_SIZE) if size_text else _roomy(used)
    staged = os.path.join(work, "image.ext4")
    make_filesystem(rootfs, staged, size)
    return register(name, staged, image_config, label)


def _spool_stdin(work):
    """An archive piped in: tar needs to seek, so keep it in the work directory first."""
    import sys

    path = os.path.join(work, "stdin.tar")
    with open(path, "wb") as handle:
        for chunk in iter(lambda: sys.stdin.buffer.read(1 << 20), b""):
            handle.write(chunk)
    return path


def _roomy(used):
    """An image size for `used` bytes of files: half as much again plus 16 MiB, whole MiB."""
    return max(MIN_SIZE, ((int(used * 1.5) + (16 << 20)) >> 20) << 20)


def _name_from_reference(reference):
    """'localhost/webfx:1' -> 'webfx-1'; 'busybox:latest' -> 'busybox'."""
    if not reference:
        raise Invalid("the image in the archive has no name: give one with --name")
    repository, _, tag = reference.rsplit("/", 1)[-1].partition(":")
    name = repository if tag in ("", "latest") else f"{repository}-{tag}"
    return "".join(c if c.isalnum() or c in "_.-" else "-" for c in name).strip("-._") or "imported"


def register(name, staged, image_config, label, digest=None):
    """Move a finished image file into place and record it, atomically.

    digest: the file's "sha256:..." when the caller has just computed it.
    """
    digest = digest or "sha256:" + file_sha256(staged)
    os.chmod(staged, 0o600)  # root's alone, as a container's disk copy: a pulled image may be private
    with state.locked():
        if state.IMAGES.find(name):
            raise Conflict(f"image {name!r} already exists (created meanwhile by another command)")
        write_config(name, image_config)
        os.replace(staged, image_file(name))
        row = {
            "name": name,
            "digest": digest,
            "size": str(os.stat(image_file(name)).st_size),
            "source": label,
            "created": state.now(),
        }
        state.IMAGES.upsert(row)
    return row


def sparse_file(target, size):
    """An empty sparse file of size bytes; Invalid, naming the size, when no file that large can be made there."""
    try:
        with open(target, "wb") as handle:
            handle.truncate(size)
    except OSError as error:
        if error.errno != errno.EFBIG:
            raise
        limits = "its filesystem's largest file, or this process's `ulimit -f`"
        raise Invalid(
            f"invalid image size {parse.human_size(size)!r}: no file that large can be made under "
            f"{state.path('images')} ({limits})"
        ) from None


def make_filesystem(rootfs, target, size):
    """A sparse file of `size` bytes holding an ext4 filesystem populated from rootfs."""
    sparse_file(target, size)
    # lazy_journal_init: the file is fresh and sparse, so the journal already reads as zeros.
    # Zeroed by mkfs, it becomes allocated extents that every container's copy would carry
    # (4 MiB for a 64M image, 64 MiB for 1G) once the page cache has seen them.
    options = "root_owner=0:0,lazy_journal_init=1"
    argv = ["mkfs.ext4", "-q", "-F", "-m", "0", "-E", options, "-d", rootfs, target]
    try:
        linux.run(argv)
    except Missing:
        raise Missing("mkfs.ext4 not found: install e2fsprogs (1.43 or later, for -d)") from None
    except CommandFailed as error:
        needed = tree_bytes(rootfs)
        if needed * 1.15 + (4 << 20) > size:
            raise Invalid(
                f"image size {parse.human_size(size)} is too small for {parse.human_size(needed)} of files: "
                f"use --size {parse.human_size(int(needed * 1.3) + (16 << 20))} or more"
            ) from None
        raise error
    # mkfs makes lost+found; an image holds exactly its files (e2fsck remakes it if ever needed)
    try:
        linux.run(["debugfs", "-w", "-R", "rmdir lost+found", target])
    except Missing:
        raise Missing("debugfs not found: install e2fsprogs") from None


def tree_bytes(root):
    """Disk space the files under root use (links are not followed; a file gone meanwhile counts 0)."""
    total = 0
    for directory, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def file_sha256(path):
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_static_busybox():
    """Path of a statically linked busybox (it must run inside any image)."""
    import shutil

    for candidate in (shutil.which("busybox"), "/bin/busybox", "/usr/bin/busybox"):
        if candidate and os.path.isfile(candidate) and is_static_elf(candidate):
            return candidate
    raise Missing("no statically linked busybox on this host: install busybox-static")


def is_static_elf(path):
    """True for an ELF executable with no program interpreter (PT_INTERP)."""
    import struct

    with open(path, "rb") as handle:
        header = handle.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2:
            return False
        (phoff,) = struct.unpack_from("<Q", header, 32)
        phentsize, phnum = struct.unpack_from("<HH", header, 54)
        handle.seek(phoff)
        table = handle.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))


def populate_busybox(rootfs):
    """A tiny root: the host's static busybox, its applet links, /etc basics."""
    import shutil

    busybox = find_static_busybox()
    for directory, mode in (
        ("bin", 0o755), ("sbin", 0o755), ("usr/bin", 0o755), ("usr/sbin", 0o755),
        ("etc", 0o755), ("proc", 0o555), ("sys", 0o555), ("dev", 0o755), ("run", 0o755),
        ("tmp", 0o1777), ("var/tmp", 0o1777), ("root", 0o700), ("home", 0o755),
    ):  # fmt: skip
        os.makedirs(os.path.join(rootfs, directory), exist_ok=True)
        os.chmod(os.path.join(rootfs, directory), mode)
    shutil.copy2(busybox, os.path.join(rootfs, "bin/busybox"))
    for applet in linux.run([busybox, "--list-full"]).split():
        link = os.path.join(rootfs, applet)
        if applet != "bin/busybox" and not os.path.lexists(link):
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink("/bin/busybox", link)
    _write_etc(rootfs)
    return {"Cmd": ["sh"], "Env": [DEFAULT_PATH]}


def _write_etc(rootfs):
    files = {
        "passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        "group": "root:x:0:\nnogroup:x:65534:\n",
        "hostname": "",
        "hosts": "",
        "resolv.conf": "",
    }
    for name, text in files.items():
        with open(os.path.join(rootfs, "etc", name), "w", encoding="utf-8") as handle:
            handle.write(text)


def parse_debootstrap(spec):
    """'SUITE[,variant=V][,include=a+b][,mirror=URL]' -> dict."""
    suite, *options = spec.split(",")
    if not suite or not suite.replace("-", "").isalnum():
        raise Invalid(f"invalid debootstrap suite {suite!r}: use a suite name such as bookworm")
    recipe = {"suite": suite, "variant": "minbase", "include": [], "mirror": None}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key not in ("variant", "include", "mirror") or not value:
            raise Invalid(f"invalid debootstrap option {option!r}: use variant=V, include=a+b or mirror=URL")
        recipe[key] = value.split("+") if key == "include" else value
    return recipe


def host_mirror(sources_dir="/etc/apt"):
    """The first Debian/Ubuntu archive URL the host's apt uses, or None."""
    import glob

    lines = []
    parts = sorted(glob.glob(os.path.join(sources_dir, "sources.list.d", "*")))
    for path in [os.path.join(sources_dir, "sources.list"), *parts]:
        try:
            with open(path, encoding="utf-8") as handle:
                lines += handle.read().splitlines()
        except OSError:
            continue
    for line in lines:
        for url in _source_urls(line.split()):
            if url.rstrip("/").endswith(("/debian", "/ubuntu")):
                return url
    return None


def _source_urls(words):
    """URLs on one apt sources line: 'deb [opts] URL ...' or deb822 'URIs: URL...'."""
    if words[:1] == ["URIs:"]:
        return words[1:]
    if words[:1] == ["deb"]:
        return [word for word in words[1:3] if "://" in word]
    return []


def populate_debootstrap(spec, rootfs):
    """A Debian or Ubuntu root built by debootstrap from the host's mirror."""
    import shutil

    recipe = parse_debootstrap(spec)
    if not shutil.which("debootstrap"):
        raise Missing("debootstrap not found: install it (apt-get install debootstrap)")
    # Packages are kept under the state root: the next image of the suite reuses them.
    cache = state.path("cache", "debootstrap", recipe["suite"])
    os.makedirs(cache, exist_ok=True)
    argv = ["debootstrap", f"--variant={recipe['variant']}", f"--cache-dir={cache}"]
    if recipe["include"]:
        argv.append("--include=" + ",".join(recipe["include"]))
    argv += [recipe["suite"], rootfs]
    mirror = recipe["mirror"] or host_mirror()
    if mirror:
        argv.append(mirror)
    try:
        linux.run(argv, progress=True)
    except CommandFailed as error:
        raise CommandFailed(argv, error.details["status"], _debootstrap_log_tail(rootfs) or error.message) from None
    shutil.rmtree(os.path.join(rootfs, "var/cache/apt/archives"), ignore_errors=True)
    shutil.rmtree(os.path.join(rootfs, "var/lib/apt/lists"), ignore_errors=True)
    os.makedirs(os.path.join(rootfs, "var/lib/apt/lists/partial"), exist_ok=True)
    os.makedirs(os.path.join(rootfs, "var/cache/apt/archives/partial"), exist_ok=True)
    return {"Cmd": ["bash"], "Env": [DEFAULT_PATH]}


def tag(source, name):
    """Register image name as a copy of image source (a reflink where the filesystem can); returns its row.

    The copy is a file of its own: either name can be removed, or given to
    containers, without the other.
    """
    parse.name(name, "image name")
    row = get(source)
    refuse_taken(name)
    with build_dir(name) as work:
        staged = os.path.join(work, "image.ext4")
        copy_file(image_file(source), staged)
        return register(name, staged, config(source), f"image:{source}", digest=row["digest"])


def copy_to(name, target, durable=True):
    """Give a container its own copy of the image: a reflink if the filesystem can, else sparse."""
    copy_file(image_file(name), target, durable)


def copy_file(source_path, target, durable=True):
    """Copy an ext4 file: a reflink if the filesystem can, else only its data (sparse).

    durable: synced to the disk before returning. Not for a copy that a crash
    of the host makes worthless anyway (run --rm's).
    """
    import fcntl

    source = os.open(source_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.ioctl(out, FICLONE, source)
            except OSError:
                _sparse_copy(source, out)
            if durable:
                os.fsync(out)
        finally:
            os.close(out)
    finally:
        os.close(source)


def _sparse_copy(source, out):
    """Copy only the data extents; holes stay holes (SEEK_DATA/SEEK_HOLE)."""
    size = os.fstat(source).st_size
    offset = 0
    while offset < size:
        try:
            offset = os.lseek(source, offset, os.SEEK_DATA)
        except OSError:  # ENXIO: only a hole remains
            break
        end = os.lseek(source, offset, os.SEEK_HOLE)
        linux.copy_range(source, out, offset, end, "the image file")
        offset = end
    os.ftruncate(out, size)


def _debootstrap_log_tail(rootfs, lines=3):
    """debootstrap keeps its reasons in its own log: quote the end of it."""
    try:
        with open(os.path.join(rootfs, "debootstrap", "debootstrap.log"), encoding="utf-8", errors="replace") as handle:
            return "\n".join(handle.read().strip().splitlines()[-lines:])
    except OSError:
        return ""


def with_mounted(disk, mount_point, function, what, read_only=False):
    """Run function(mount_point) with the ext4 file disk mounted there, in a throwaway mount namespace."""
    with_mounts([(disk, mount_point, read_only)], lambda: function(mount_point), what)


def with_mounts(mounts, function, what):
    """Run function() with each ext4 file of mounts, [(disk, mount point, read_only)], mounted.

    The work happens in a forked child whose private mount namespace dies with
    it: nothing stays mounted, and the loop devices free themselves (autoclear).
    """
    child = os.fork()
    if child == 0:
        status = 1
        try:
            linux.unshare(linux.CLONE_NEWNS)
            linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
            for disk, mount_point, read_only in mounts:
                device, fd = linux.loop_attach(disk, read_only=read_only)
                try:
                    flags = linux.MS_NODEV | (linux.MS_RDONLY if read_only else 0)
                    linux.mount(device, mount_point, "ext4", flags)
                finally:
                    os.close(fd)
            function()
            status = 0
        except BaseException as error:  # noqa: BLE001 - a forked child must never return
            os.write(2, f"baleine: cannot {what}: {error}\n".encode())
        finally:
            os._exit(status)
    _, status = os.waitpid(child, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        from .errors import BaleineError

        raise BaleineError(f"could not {what} ({', '.join(disk for disk, _, _ in mounts)})")


EXT4_INCOMPAT_RECOVER = 0x4  # s_feature_incompat: the journal holds what is not yet in place
_INCOMPAT_OFFSET = 1024 + 0x60  # the superblock starts 1024 bytes in


def needs_recovery(disk):
    """Whether the ext4 file disk was copied from a live filesystem: its journal is yet to be replayed.

    Such a file cannot be mounted read-only (EROFS): mounting it read-write
    replays the journal, which changes its bytes.
    """
    with open(disk, "rb") as handle:
        handle.seek(_INCOMPAT_OFFSET)
        return bool(int.from_bytes(handle.read(4), "little") & EXT4_INCOMPAT_RECOVER)


def readable(disk, work):
    """(path, read_only) to mount disk's files from: a copy in work, replayed read-write, when disk
    needs recovery (an image committed from a running container by an earlier release)."""
    if not needs_recovery(disk):
        return disk, True
    copy = os.path.join(work, "replayed.ext4")
    copy_file(disk, copy)
    return copy, False


def replay_journal(disk, mount_point):
    """Mount the ext4 file disk read-write and let go: the kernel replays its journal, the file is clean."""
    with_mounted(disk, mount_point, lambda _root: None, "replay the copy's journal")


def used_bytes(name):
    """Disk space the image file really takes (it is sparse)."""
    return os.stat(image_file(name)).st_blocks * 512


def describe(row):
    """A row plus what is derived from it, for list and inspect."""
    return {
        "name": row["name"],
        "id": short_id(row),
        "digest": row["digest"],
        "size": int(row["size"]),
        "used": used_bytes(row["name"]),
        "source": row["source"],
        "created": row["created"],
        "file": image_file(row["name"]),
    }


def list_all():
    return [describe(row) for row in state.IMAGES.read()]


def inspect(name):
    info = describe(get(name))
    info["config"] = config(name)
    return info


def prune():
    """Delete every image no container uses (created, running or exited); returns what each freed."""
    with state.locked():
        used = {row["image"] for row in state.CONTAINERS.read()}
        unused = [row["name"] for row in state.IMAGES.read() if row["name"] not in used]
        removed = []
        for name in unused:
            freed = used_bytes(name)
            removed.append({**remove(name), "freed": freed})
        return removed


def remove(name):
    """Delete an image no container uses."""
    with state.locked():
        get(name)
        users = [row["name"] for row in state.CONTAINERS.read() if row["image"] == name]
        if users:
            raise Conflict(f"image {name!r} is in use by container {', '.join(users)}: remove the container first")
        state.IMAGES.remove(name)
        for path in (image_file(name), config_file(name)):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
    return {"name": name}
