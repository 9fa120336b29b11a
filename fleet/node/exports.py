"""Images out: a one-layer docker-archive or oci-archive of an image's files and config.

Reproducible: the same image gives the same bytes (entries sorted, times
fixed at 0 in the tars and at the image's creation in the config, JSON with
sorted keys), so digests are stable and tools can deduplicate it.

`container export` writes a container's files as one plain tar (Docker's
export), times kept: a backup, or a root filesystem for `image create`.
"""

import hashlib
import io
import os
import tarfile

from . import images, imports, jsonlite, registry, state
from .errors import Invalid

FORMATS = ("docker-archive", "oci-archive")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def export(name, destination, fmt="docker-archive", tag=None):
    """Write image name to destination (a path, or '-' for stdout); returns the digests."""
    if fmt not in FORMATS:
        raise Invalid(f"invalid --format {fmt!r}: use {' or '.join(FORMATS)}")
    images.get(name)
    target = _writable_file(destination)
    tag = tag or f"localhost/{name}:latest"
    with images.build_dir("export") as work:
        layer, diff_id, config = one_layer(name, work)
        entries = (_docker_entries if fmt == "docker-archive" else _oci_entries)(config, layer, diff_id, tag)
        _write_outer(entries, target)
        return {"name": name, "format": fmt, "tag": tag, "config": "sha256:" + _sha256(config), "layer": diff_id}


def push(name, text, username=None, password=None, insecure=False, say=None):
    """Put image name in a registry as REF (a tag): one gzip layer and the config, then the manifest.

    Blobs the registry has already are not sent again; the layer may be
    mounted from another repository of the registry it was pushed to before
    (PushLayer). Returns the manifest's digest and the bytes sent. say(line)
    hears of each blob.
    """
    reference = registry.Reference(text)
    if reference.digest:
        raise Invalid(f"invalid image reference {text!r} to push to: give a tag (a digest is what a push makes)")
    row = images.get(name)
    client = registry.Client(reference, username, password, insecure, actions="pull,push")
    try:
        with images.build_dir("push") as work:
            layer = PushLayer(name, row, work)
            config = image_config(name, row, layer.diff_id)
            sent = _upload(client, "config", _descriptor(OCI_CONFIG, data=config), {"data": config}, say)
            if not layer.placed(client, say):
                diff_id = layer.diff_id
                layer.export()
                if layer.diff_id != diff_id:  # another tarfile wrote it than the kept push's: the config changes too
                    config = image_config(name, row, layer.diff_id)
                    sent += _upload(client, "config", _descriptor(OCI_CONFIG, data=config), {"data": config}, say)
                sent += _upload(client, "layer", layer.descriptor, {"path": layer.path}, say)
            config_blob = _descriptor(OCI_CONFIG, data=config)
            digest = registry.put_manifest(client, _oci_manifest(config_blob, layer.descriptor), OCI_MANIFEST)
    finally:
        client.close()
    layer.remember(reference)
    return {"name": name, "reference": reference.named(), "digest": digest, "sent": sent}


class PushLayer:
    """The image as the one gzip layer a push sends, known from an earlier push or exported now.

    A push keeps the layer's digests, and the repositories it went to, in the
    image's config file (Layer), for the image file it was made of (its
    digest). A later push of that same file asks the registry for the layer,
    then mounts it from one of those repositories of the same registry (OCI
    cross-repository mount), and only when neither serves reads the image's
    files again: a push to another tag or repository sends no layer and
    exports nothing.
    """

    def __init__(self, name, row, work):
        self.name, self.row, self.work = name, row, work
        kept = images.config(name).get("Layer")
        usable = isinstance(kept, dict) and {"DiffID", "Digest", "Size"} <= kept.keys()  # a hand-edited one: ignored
        self.kept = kept if usable and kept.get("Image") == row["digest"] else None
        self.path = None
        if self.kept:
            self.diff_id = self.kept["DiffID"]
            self.descriptor = {"mediaType": OCI_LAYER + "+gzip", "digest": self.kept["Digest"],
                               "size": self.kept["Size"]}  # fmt: skip
        else:
            self.export()

    def export(self):
        """Read the image's files into layer.tar.gz in work (once)."""
        if self.path is None:
            layer = os.path.join(self.work, "layer.tar")
            write_image_layer(self.name, layer, self.work)
            self.diff_id = "sha256:" + _file_sha256(layer)
            self.path = _gzipped(layer, self.work)
            self.descriptor = _descriptor(OCI_LAYER + "+gzip", path=self.path)

    def placed(self, client, say=None):
        """Whether the repository has the kept layer now, there already or mounted; never when it was just made."""
        if self.path is not None:
            return False  # exported: upload() asks the registry for it before sending
        digest = self.descriptor["digest"]
        here = client.reference
        pushed_to = (kept.partition("/") for kept in self.kept.get("Repositories", []))  # DOMAIN/REPOSITORY
        sources = [repository for domain, _, repository in pushed_to
                   if domain == here.domain and repository != here.repository]  # fmt: skip
        how = registry.place(client, digest, sources)
        if how and say:
            say(f"layer {digest[:19]}: {how}")
        return how is not None

    def remember(self, reference):
        """Keep the layer's digests and this repository in the image's config, if the image is still that file."""
        at = f"{reference.domain}/{reference.repository}"
        repositories = [kept for kept in (self.kept or {}).get("Repositories", []) if kept != at]
        layer = {"Image": self.row["digest"], "DiffID": self.diff_id, "Digest": self.descriptor["digest"],
                 "Size": self.descriptor["size"], "Repositories": [*repositories, at][-KEPT_REPOSITORIES:]}  # fmt: skip
        images.keep_in_config(self.name, self.row["digest"], "Layer", layer)


KEPT_REPOSITORIES = 16  # the most recent repositories a layer was pushed to, mount sources for the next push


def _descriptor(media_type, data=None, path=None):
    """An OCI descriptor of a blob: bytes data, or the file at path."""
    if path is None:
        return {"mediaType": media_type, "digest": "sha256:" + _sha256(data), "size": len(data)}
    return {"mediaType": media_type, "digest": "sha256:" + _file_sha256(path), "size": os.path.getsize(path)}


def _oci_manifest(config, layer):
    """An OCI image manifest (bytes) of one config and one layer, given as descriptors."""
    return _json({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]})


def _upload(client, what, descriptor, blob, say):
    """Send one blob unless the registry has it; the bytes sent. say hears which it was."""
    sent = registry.upload(client, descriptor["digest"], say=say, **blob)
    if say:
        from .parse import human_size

        say(f"{what} {descriptor['digest'][:19]}: " + (f"{human_size(sent)} sent" if sent else "already there"))
    return sent


def _gzipped(layer, work):
    """layer.tar.gz beside layer: the same bytes for the same layer (no name, time 0 in the gzip header)."""
    import gzip

    target = os.path.join(work, "layer.tar.gz")
    with open(layer, "rb") as source, open(target, "wb") as raw, gzip.GzipFile("", "wb", fileobj=raw, mtime=0) as out:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            out.write(chunk)
    return target


def one_layer(name, work):
    """(layer tar path in work, its diff id, config JSON bytes): image name as one layer and its config."""
    row = images.get(name)
    layer = os.path.join(work, "layer.tar")
    write_image_layer(name, layer, work)
    diff_id = "sha256:" + _file_sha256(layer)
    return layer, diff_id, image_config(name, row, diff_id)


def write_image_layer(name, layer, work):
    """The files of image name as one layer tar at path layer (the image file read, never changed)."""
    mount_point = images.rootfs_dir(work)
    disk, read_only = images.readable(images.image_file(name), work)  # the image file stays as it is
    images.with_mounted(disk, mount_point, lambda root: write_layer(root, layer), "read the image's files",
                        read_only=read_only)  # fmt: skip


def image_config(name, row, diff_id):
    """The OCI image config (JSON bytes) of image name as the one layer diff_id."""
    stored = {key: value for key, value in images.config(name).items() if key in imports.KEPT_CONFIG}
    return _config(row, stored, diff_id)


def export_container(ref, destination):
    """Write a container's files (its disk: not its volumes, tmpfs or /etc files) to destination as a tar.

    destination: a path (replaced whole, or left as it was), or '-' for stdout.
    A running container is frozen while its disk is copied, as for commit.
    """

    from .commit import consistent_disk

    target = _writable_file(destination)
    with images.build_dir("export") as work:
        mount_point = images.rootfs_dir(work)
        with consistent_disk(ref, work) as (row, disk, copied):
            read_only = not copied  # a copy's journal is replayed as it mounts: that writes (to our copy)
            if target is None:
                _tar_mounted(disk, mount_point, None, read_only)
            else:
                try:
                    with state.replacing(target) as out:
                        _tar_mounted(disk, mount_point, out, read_only)
                except OSError as error:
                    raise Invalid(f"cannot write {target}: {error.strerror or error}") from None
        return {"name": row["name"], "file": target or "-"}


def _tar_mounted(disk, mount_point, out, read_only):
    """The files of the ext4 file disk as a tar on out (None: stdout)."""
    import sys

    def write(root):
        stream = out if out is not None else sys.stdout.buffer
        write_layer(root, stream, keep_times=True)
        stream.flush()  # the child that writes leaves with os._exit

    images.with_mounted(disk, mount_point, write, "read the container's files", read_only=read_only)


def write_layer(root, target, keep_times=False):
    """One layer tar of the tree at root: sorted, owners and modes kept, hard links kept, times zeroed
    unless keep_times. target: a path, or a binary stream (written in order, no seeking)."""
    seen = {}
    normalised = _named_only if keep_times else _normalised
    where = {"name": target, "mode": "w"} if isinstance(target, str) else {"fileobj": target, "mode": "w|"}
    with tarfile.open(**where, format=tarfile.PAX_FORMAT) as tar:
        tar.add(root, arcname=".", recursive=False, filter=normalised)
        for directory, dirs, files in os.walk(root):
            dirs.sort()
            relative = os.path.relpath(directory, root)
            for name in sorted([*dirs, *files]):
                path = os.path.join(directory, name)
                if relative == "." and name == "lost+found":
                    continue  # mkfs's, not the image's
                arcname = os.path.normpath(os.path.join(relative, name))
                info = tar.gettarinfo(path, arcname)
                info = normalised(info)
                key = (os.lstat(path).st_dev, os.lstat(path).st_ino)
                if info.isreg() and os.lstat(path).st_nlink > 1 and key in seen:
                    info.type, info.linkname, info.size = tarfile.LNKTYPE, seen[key], 0
                    tar.addfile(info)
                    continue
                seen.setdefault(key, arcname)
                if info.isreg():
                    with open(path, "rb") as handle:
                        tar.addfile(info, handle)
                else:
                    tar.addfile(info)
            dirs[:] = [d for d in dirs if not (relative == "." and d == "lost+found")]


def _normalised(info):
    info.mtime = 0
    return _named_only(info)


def _named_only(info):
    """Owners by number only: the names are the host's, not the container's."""
    info.uname = info.gname = ""
    info.pax_headers = {}
    return info


def _config(row, stored, diff_id):
    created = row["created"]
    config = {
        "architecture": registry.platform()[1],  # this host's, by Go's name
        "os": "linux",
        "created": created,
        "config": stored,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": f"baleine image export ({row['source']})"}],
    }
    return _json(config)


def _json(document):
    return jsonlite.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path):
    return images.file_sha256(path)


def _docker_entries(config, layer, diff_id, tag):
    config_name = f"{_sha256(config)}.json"
    layer_name = f"{diff_id[7:]}.tar"
    manifest = _json([{"Config": config_name, "RepoTags": [tag], "Layers": [layer_name]}])
    return [(config_name, config), (layer_name, layer), ("manifest.json", manifest)]


def _oci_entries(config, layer, diff_id, tag):
    layer_blob = {"mediaType": OCI_LAYER, "digest": diff_id, "size": os.path.getsize(layer)}  # diff id: uncompressed
    manifest = _oci_manifest(_descriptor(OCI_CONFIG, data=config), layer_blob)
    index = _json({
        "schemaVersion": 2,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": "sha256:" + _sha256(manifest), "size": len(manifest),
                       "annotations": {"org.opencontainers.image.ref.name": tag}}],
    })  # fmt: skip
    blobs = {_sha256(config): config, diff_id[7:]: layer, _sha256(manifest): manifest}
    return [
        ("blobs", None),
        ("blobs/sha256", None),
        *sorted((f"blobs/sha256/{digest}", data) for digest, data in blobs.items()),
        ("index.json", index),
        ("oci-layout", _json({"imageLayoutVersion": "1.0.0"})),
    ]


def _writable_file(destination):
    """The archive's absolute path (None for stdout), refused before any work when it cannot be written."""
    if destination == "-":
        return None
    if not destination:
        raise Invalid("invalid FILE '': give the archive's path, or - for stdout")
    return state.writable_file(destination, "NAME.tar", "give a file's path, or - for standard output")


def _write_outer(entries, target):
    """The archive itself: entries in the given order, times fixed.

    A file is replaced whole (state.replacing: written beside its name, so on
    any filesystem): a failure leaves no part of it.
    """
    import sys

    if target is None:
        _write_entries(entries, sys.stdout.buffer)
        return
    try:
        with state.replacing(target) as out:
            _write_entries(entries, out)
    except OSError as error:
        raise Invalid(f"cannot write {target}: {error.strerror or error}") from None


def _write_entries(entries, out):
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime, info.mode = 0, 0o644
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(data, bytes):
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.size = os.path.getsize(data)
                with open(data, "rb") as handle:
                    tar.addfile(info, handle)
