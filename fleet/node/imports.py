"""Docker and OCI image archives in: read, choose the image, verify every digest, apply layers.

Formats: docker-archive (`docker save`, `podman save`, and the OCI layout
Docker 25+ writes inside it: manifest.json names member paths either way)
and oci-archive (index.json, nested indexes followed). The outer archive is
never extracted: members are read by name from an index of the tar, so a
manifest naming '../x' simply finds nothing. Layers stream through hashing
readers into archive.Tree; a digest that does not match names the blob.
"""

import hashlib
import posixpath
import tarfile

from . import archive, jsonlite
from .errors import Invalid, Missing
from .registry import MAX_MANIFEST

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
REF_NAMES = ("org.opencontainers.image.ref.name", "io.containerd.image.name")
KEPT_CONFIG = ("Env", "Entrypoint", "Cmd", "WorkingDir", "User", "ExposedPorts", "Labels", "StopSignal", "Healthcheck")


class Hashing:
    """A file object that hashes what is read through it."""

    def __init__(self, source):
        self.source = source
        self.digest = hashlib.sha256()

    def read(self, size=-1):
        data = self.source.read(size)
        self.digest.update(data)
        return data

    def drain(self):
        while self.read(1 << 20):
            pass
        return "sha256:" + self.digest.hexdigest()


class Archive:
    """An image archive's members, looked up by normalised name, symlinks resolved inside it."""

    def __init__(self, path):
        try:
            self.tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by close()
            self.members = {posixpath.normpath(m.name).lstrip("/"): m for m in self.tar.getmembers()}
        except tarfile.ReadError:  # its message lists each decompressor tried, one per line
            raise Invalid(
                f"cannot read {path} as an image archive: {archive.NOT_TAR}, "
                "such as `podman save` or `docker save` write"
            ) from None
        except (tarfile.TarError, OSError) as error:
            raise Invalid(f"cannot read {path} as an image archive: {error}") from None

    def close(self):
        self.tar.close()

    def member(self, name, hops=0):
        key = posixpath.normpath(name).lstrip("/")
        found = self.members.get(key)
        if found is None or key.startswith(".."):
            raise Invalid(f"the archive names {name!r}, which it does not contain")
        if found.issym() and hops < 8:
            return self.member(posixpath.join(posixpath.dirname(key), found.linkname), hops + 1)
        if not found.isreg():
            raise Invalid(f"archive entry {name!r} is not a regular file")
        return found

    def open(self, name):
        return self.tar.extractfile(self.member(name))

    def read(self, name, digest=None):
        """A JSON document of the archive (manifest, index, config), its digest checked when one is given."""
        if self.member(name).size > MAX_MANIFEST:  # read whole into memory: a hostile archive's could be huge
            raise Invalid(f"archive entry {name!r} is over {MAX_MANIFEST >> 20} MiB: not an image's JSON document")
        data = self.open(name).read()
        _verify(name, digest, "sha256:" + hashlib.sha256(data).hexdigest())
        return data

    def json(self, name, digest=None):
        try:
            return jsonlite.loads(self.read(name, digest))
        except ValueError:
            raise Invalid(f"archive entry {name!r} is not valid JSON") from None


def _verify(what, expected, found):
    if expected and expected != found:
        raise Invalid(f"digest mismatch for {what}: the archive records {expected}, its content is {found}")


def candidates(source):
    """[(tags, image)] in the archive; image: config name and digest, layers (name, digest), diff ids."""
    if "manifest.json" in source.members:
        return [_docker_entry(source, entry) for entry in source.json("manifest.json")]
    if "index.json" in source.members:
        return _oci_entries(source, source.json("index.json"), [])
    raise Invalid("not an image archive: it has neither manifest.json (docker-archive) nor index.json (OCI)")


def _docker_entry(source, entry):
    config_name = entry["Config"]
    stem = posixpath.basename(config_name).split(".")[0]
    digest = f"sha256:{stem}" if len(stem) == 64 else None  # podman/docker name it by its digest
    layers = [(name, None) for name in entry["Layers"]]
    return (entry.get("RepoTags") or [], {"config": config_name, "config_digest": digest, "layers": layers})


def _oci_entries(source, index, seen):
    found = []
    for descriptor in index.get("manifests", []):
        name = blob_name(descriptor["digest"])
        if name in seen:
            raise Invalid(f"the archive's indexes loop through {descriptor['digest']}")
        document = source.json(name, descriptor["digest"])
        if descriptor.get("mediaType") in (OCI_INDEX, DOCKER_LIST) or "manifests" in document:
            found += _oci_entries(source, document, [*seen, name])
            continue
        tags = [descriptor.get("annotations", {}).get(key) for key in REF_NAMES]
        found.append(([tag for tag in tags if tag][:1], image_of(document)))
    return found


def image_of(manifest):
    """What apply takes from an image manifest: the config and the layers, as blob names with their digests."""
    return {
        "config": blob_name(manifest["config"]["digest"]),
        "config_digest": manifest["config"]["digest"],
        "layers": [(blob_name(layer["digest"]), layer["digest"]) for layer in manifest["layers"]],
    }


def blob_name(digest):
    algorithm, _, hexdigest = digest.partition(":")
    if algorithm != "sha256" or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
        raise Invalid(f"unsupported or malformed digest {digest!r}")
    return f"blobs/sha256/{hexdigest}"


def choose(found, tag=None):
    """The one image to import: by --tag, or the only one; else an error listing the choices."""
    tagged = [(tags, image) for tags, image in found]
    if tag is not None:
        for tags, image in tagged:
            if tag in tags or any(t.split("/")[-1] == tag for t in tags):
                return tag, image
        choices = ", ".join(t for tags, _ in tagged for t in tags) or "none tagged"
        raise Invalid(f"no image tagged {tag!r} in the archive (it has: {choices})")
    if len(tagged) == 1:
        tags, image = tagged[0]
        return (tags[0] if tags else None), image
    choices = ", ".join(t for tags, _ in tagged for t in tags) or f"{len(tagged)} untagged images"
    raise Invalid(f"the archive holds several images: choose one with --tag ({choices})")


def apply(source, image, tree):
    """Verify the config, then apply each layer in order into tree; returns the image config."""
    config = source.json(image["config"], image["config_digest"])
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(image["layers"]):
        raise Invalid(f"the config lists {len(diff_ids)} layers, the manifest {len(image['layers'])}")
    for (name, digest), diff_id in zip(image["layers"], diff_ids):
        _apply_layer(source, name, digest, diff_id, tree)
    return {key: value for key, value in (config.get("config") or {}).items() if key in KEPT_CONFIG and value}


def _apply_layer(source, name, digest, diff_id, tree):
    import contextlib
    import zlib

    blob = Hashing(source.open(name))
    head = blob.read(4)
    if head == ZSTD_MAGIC:
        unpacking = contextlib.nullcontext(Hashing(_zstd(head, blob, name)))
    else:
        unpacking = Unpacking(blob, head, gzipped=head[:2] == GZIP_MAGIC)
    try:
        with unpacking as unpacked:
            with tarfile.open(fileobj=unpacked, mode="r|") as layer:
                archive.apply_layer(tree, layer)
            found_diff_id = unpacked.drain()  # gzip checks its CRC only at the end of the stream
    except tarfile.TarError as error:
        raise Invalid(f"layer {name} is not a valid tar stream: {error}") from None
    except (EOFError, zlib.error) as error:
        raise Invalid(f"layer {name} is corrupt: {error}") from None
    _verify(f"layer {name} (its diff id)", diff_id, found_diff_id)
    _verify(f"layer {name}", digest, blob.drain())


GZIP_MAGIC, ZSTD_MAGIC = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"


class Unpacking:
    """A layer's tar stream, unpacked by a thread of its own while the caller extracts it.

    The thread reads the blob (hashing it: the blob's digest), gunzips it and
    hashes the result (the diff id); for a layer not compressed the two are
    the same bytes, hashed once. hashlib, zlib and socket reads let go of the
    interpreter lock on large buffers, so that work runs beside the extraction
    (tar headers, file writes) instead of between its steps. At most QUEUED
    chunks wait: memory stays bounded whatever the layer's size.
    """

    CHUNK, QUEUED = 1 << 20, 16

    def __init__(self, blob, head, gzipped):
        import queue
        import threading

        self.blob, self.gzipped = blob, gzipped
        self.diff = hashlib.sha256() if gzipped else blob.digest
        self.chunks = queue.Queue(self.QUEUED)
        self.stopping = threading.Event()
        self.pending, self.offset, self.ended = b"", 0, False
        self.thread = threading.Thread(target=self._produce, args=(head,), daemon=True)
        self.thread.start()

    def _produce(self, head):
        try:
            raw = _chunks(head, self.blob, self.CHUNK)
            for chunk in _gunzipped(raw, self.CHUNK) if self.gzipped else raw:
                if self.gzipped:
                    self.diff.update(chunk)
                self._put(chunk)
            self._put(None)
        except _Stopped:
            pass
        except BaseException as error:  # noqa: BLE001 - handed to the reading thread, raised there
            try:
                self._put(error)
            except _Stopped:
                pass

    def _put(self, item):
        import queue

        while not self.stopping.is_set():
            try:
                self.chunks.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        raise _Stopped

    def read(self, size=-1):
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(self.CHUNK), b""))
        while self.offset >= len(self.pending):
            if self.ended:
                return b""
            item = self.chunks.get()
            if item is None or isinstance(item, BaseException):
                self.ended = True
                if item is None:
                    return b""
                raise item
            self.pending, self.offset = item, 0
        data = self.pending[self.offset : self.offset + size]
        self.offset += len(data)
        return data

    def drain(self):
        """The diff id: read to the end (past the tar's end marker), then the digest of all it held."""
        while self.read(self.CHUNK):
            pass
        return "sha256:" + self.diff.hexdigest()

    def stop(self):
        """Let the thread go when the caller gave up midway; it holds no file and leaves nothing."""
        self.stopping.set()

    def __enter__(self):
        return self

    def __exit__(self, *_exception):
        self.stop()


class _Stopped(Exception):
    """The reading side gave up: the unpacking thread ends."""


def _chunks(head, blob, size):
    yield head
    yield from iter(lambda: blob.read(size), b"")


def _gunzipped(chunks, limit):
    """The bytes of the gzip members in chunks, as gzip.GzipFile reads them (NUL padding between members allowed).

    zlib checks each member's CRC and length; no chunk out is longer than limit,
    so a small layer that unpacks to gigabytes never sits whole in memory.
    """
    import zlib

    inflate = zlib.decompressobj(31)
    for data in chunks:
        while data:
            if inflate.eof:  # a member ended: padding, or the next member
                data = data.lstrip(b"\0")
                if not data:
                    break
                inflate = zlib.decompressobj(31)
            try:
                out = inflate.decompress(data, limit)
            except zlib.error as error:
                raise zlib.error(f"its gzip data is damaged ({error})") from None
            data = inflate.unused_data if inflate.eof else inflate.unconsumed_tail
            if out:
                yield out
    if not inflate.eof:
        raise EOFError("Compressed file ended before the end-of-stream marker was reached")


def _zstd(head, blob, name):
    import shutil
    import subprocess
    import tempfile

    if not shutil.which("zstd"):
        raise Missing(f"layer {name} is zstd-compressed and the zstd program is not installed (apt-get install zstd)")
    output = tempfile.TemporaryFile()  # noqa: SIM115 - returned open: the layer is read from it
    with tempfile.TemporaryFile() as compressed:
        for chunk in _chunks(head, blob, 1 << 20):
            compressed.write(chunk)
        compressed.seek(0)
        done = subprocess.run(["zstd", "-dc"], stdin=compressed, stdout=output, stderr=subprocess.PIPE)
    if done.returncode != 0:
        output.close()
        raise Invalid(f"layer {name}: zstd could not decompress it: {done.stderr.decode(errors='replace').strip()}")
    output.seek(0)
    return output
