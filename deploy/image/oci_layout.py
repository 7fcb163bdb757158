#!/usr/bin/env python3
"""Writes an OCI image layout (image-spec v1.1) holding one single-layer image.

deploy/image/build.sh makes the layer; this helper adds what turns it into an image: the image
config (entrypoint, cmd, labels, creation time), the manifest, index.json and the oci-layout
marker, every blob under blobs/sha256/ named by its digest. JSON is canonical (sorted keys, no
whitespace) and nothing depends on the clock or the machine, so the same layer and arguments
always give the same manifest digest, which is printed on standard output.

The layer is passed twice: gzip-compressed (the blob the manifest points at) and uncompressed
(its sha256 is the config's diff_id, which containerd checks after unpacking).
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
import time

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"


def canonical(value):
    """Canonical JSON bytes: sorted keys, no whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def file_digest(path):
    """sha256 digest of a file, read in chunks (the layer is tens of MiB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def bytes_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def rfc3339(epoch):
    """The UTC timestamp OCI configs use, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def tag_of(reference):
    """The tag of `registry/repo:tag` (what `org.opencontainers.image.ref.name` carries)."""
    last = reference.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else "latest"


class Layout:
    """An image layout directory being written: blobs go in as they are made."""

    def __init__(self, path):
        self.path = path
        self.blobs = os.path.join(path, "blobs", "sha256")
        os.makedirs(self.blobs)

    def add_bytes(self, media_type, data):
        """Stores `data` as a blob; returns its descriptor."""
        digest = bytes_digest(data)
        with open(self.blob_path(digest), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def add_file(self, media_type, path):
        """Copies the file at `path` in as a blob; returns its descriptor."""
        digest = file_digest(path)
        shutil.copyfile(path, self.blob_path(digest))
        return {"mediaType": media_type, "digest": digest, "size": os.path.getsize(path)}

    def blob_path(self, digest):
        return os.path.join(self.blobs, digest.split(":", 1)[1])

    def write(self, name, value):
        with open(os.path.join(self.path, name), "wb") as f:
            f.write(canonical(value))


def image_config(args, diff_id):
    """The image config: how the runtime starts the image, and what it is."""
    created = rfc3339(args.created)
    labels = dict(label.split("=", 1) for label in args.label)
    return {
        "architecture": args.arch,
        "os": "linux",
        "created": created,
        "config": {
            "Entrypoint": json.loads(args.entrypoint),
            "Cmd": json.loads(args.cmd),
            "WorkingDir": "/",
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "deploy/image/build.sh"}],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer-tar", required=True, help="the layer, uncompressed")
    parser.add_argument("--layer-gz", required=True, help="the same layer, gzip -n")
    parser.add_argument("--out", required=True, help="layout directory to create (must not exist)")
    parser.add_argument("--name", required=True, help="image reference, e.g. example.com/bulkhead:0.1.0")
    parser.add_argument("--arch", required=True, help="OCI architecture, e.g. amd64")
    parser.add_argument("--created", type=int, required=True, help="creation time, seconds since the epoch")
    parser.add_argument("--entrypoint", required=True, help="JSON array")
    parser.add_argument("--cmd", required=True, help="JSON array")
    parser.add_argument("--label", action="append", default=[], help="KEY=VALUE, repeatable")
    args = parser.parse_args()

    layout = Layout(args.out)
    layer = layout.add_file(LAYER_MEDIA_TYPE, args.layer_gz)
    config = layout.add_bytes(CONFIG_MEDIA_TYPE, canonical(image_config(args, file_digest(args.layer_tar))))
    manifest = layout.add_bytes(
        MANIFEST_MEDIA_TYPE,
        canonical(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_MEDIA_TYPE,
                "config": config,
                "layers": [layer],
            }
        ),
    )
    manifest["platform"] = {"architecture": args.arch, "os": "linux"}
    manifest["annotations"] = {
        # containerd's importer (`ctr images import`) names the image from this one...
        "io.containerd.image.name": args.name,
        # ...other OCI tools (skopeo's oci: transport) find the image by this one.
        "org.opencontainers.image.ref.name": tag_of(args.name),
    }
    layout.write("index.json", {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [manifest]})
    layout.write("oci-layout", {"imageLayoutVersion": "1.0.0"})
    print(manifest["digest"])


if __name__ == "__main__":
    sys.exit(main())
