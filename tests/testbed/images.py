#!/usr/bin/env python3
"""Builds the test bed's container images as OCI image-layout tarballs.

No registry is reachable from the test machines, so every image the end-to-end tests use is made
here from Debian's static busybox and imported with `ctr -n k8s.io images import`.

Output is byte-for-byte deterministic (fixed mtimes and owners, sorted entries, uncompressed
layers, canonical JSON), so digests are stable across runs and machines with the same busybox.
A tarball is only rewritten when its content would change.

To add an image, add one line to IMAGES below.
"""

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

# A fixed timestamp (2024-01-01T00:00:00Z) for every file and for the image config.
EPOCH = 1704067200
CREATED = "2024-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The CRI sandbox ("pause") image must block forever: a command that exits kills the pod.
PAUSE = ["/bin/sleep", "2147483647"]


def image(name, user="", entrypoint=None, cmd=("sh",)):
    """One image to build: full reference, config User, Entrypoint and Cmd."""
    return {
        "name": name,
        "user": user,
        "entrypoint": list(entrypoint) if entrypoint else None,
        "cmd": list(cmd) if cmd else None,
    }


IMAGES = [
    image("registry.k8s.io/pause:3.10", entrypoint=PAUSE, cmd=None),
    image("docker.io/library/busybox:latest"),
    image("docker.io/library/busybox:1.36"),
    image("docker.io/bulkhead/busybox-nonroot:1.0", user="1000:1000"),
    image("quay.io/bulkhead-test/busybox:1.0"),
]

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    "user:x:1000:1000:user:/home/user:/bin/sh\n"
)
GROUP = "root:x:0:\nnogroup:x:65534:\nuser:x:1000:\n"


def canonical(obj):
    """Canonical JSON bytes: sorted keys, no whitespace."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_bytes(entries):
    """A deterministic POSIX tar of (TarInfo, bytes-or-None) pairs, in sorted name order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in sorted(entries, key=lambda e: e[0].name):
            info.mtime = EPOCH
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def entry(name, kind, mode, data=None, target=None):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    if data is not None:
        info.size = len(data)
    if target is not None:
        info.linkname = target
    return info, data


def rootfs_layer(busybox):
    """The one layer every image shares: busybox, its applets as symlinks, a minimal /etc."""
    with open(busybox, "rb") as f:
        binary = f.read()
    applets = subprocess.run(
        [busybox, "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    entries = []
    for d, mode in [
        ("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("home", 0o755),
        ("home/user", 0o755), ("proc", 0o555), ("root", 0o700), ("sys", 0o555),
        ("tmp", 0o1777), ("usr", 0o755), ("usr/bin", 0o755), ("var", 0o755),
    ]:
        entries.append(entry(d, tarfile.DIRTYPE, mode))
    entries.append(entry("bin/busybox", tarfile.REGTYPE, 0o755, data=binary))
    for applet in sorted(set(applets)):
        if applet != "busybox" and "/" not in applet:
            entries.append(entry("bin/" + applet, tarfile.SYMTYPE, 0o777, target="busybox"))
    entries.append(entry("etc/passwd", tarfile.REGTYPE, 0o644, data=PASSWD.encode()))
    entries.append(entry("etc/group", tarfile.REGTYPE, 0o644, data=GROUP.encode()))
    # Owned by uid 1000 in spirit, but owners are fixed at 0 for determinism; tests needing a
    # writable home for the non-root user use /tmp.
    return tar_bytes(entries)


def image_layout(spec, layer):
    """The OCI image-layout tarball for one image (returned as bytes)."""
    layer_desc = {
        "mediaType": "application/vnd.oci.image.layer.v1.tar",
        "digest": sha256(layer),
        "size": len(layer),
    }
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {"Env": [PATH_ENV], "User": spec["user"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]},
        "history": [{"created": CREATED, "created_by": "bulkhead tests/testbed/images.py"}],
    }
    if spec["entrypoint"]:
        config["config"]["Entrypoint"] = spec["entrypoint"]
    if spec["cmd"]:
        config["config"]["Cmd"] = spec["cmd"]
    config_bytes = canonical(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [layer_desc],
    }
    manifest_bytes = canonical(manifest)
    tag = spec["name"].rsplit(":", 1)[1]
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha256(manifest_bytes),
                "size": len(manifest_bytes),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    # containerd's importer names the image from this one...
                    "io.containerd.image.name": spec["name"],
                    # ...other OCI tools read the tag from this one.
                    "org.opencontainers.image.ref.name": tag,
                },
            }
        ],
    }
    blobs = {}
    for data in (layer, config_bytes, manifest_bytes):
        blobs[sha256(data).split(":", 1)[1]] = data
    entries = [
        entry("blobs", tarfile.DIRTYPE, 0o755),
        entry("blobs/sha256", tarfile.DIRTYPE, 0o755),
        entry("oci-layout", tarfile.REGTYPE, 0o644,
              data=canonical({"imageLayoutVersion": "1.0.0"})),
        entry("index.json", tarfile.REGTYPE, 0o644, data=canonical(index)),
    ]
    for hexdigest, data in blobs.items():
        entries.append(entry("blobs/sha256/" + hexdigest, tarfile.REGTYPE, 0o644, data=data))
    return tar_bytes(entries), sha256(manifest_bytes)


def file_name(name):
    """A file name for an image reference: registry/repo:tag -> registry_repo_tag.tar."""
    return name.replace("/", "_").replace(":", "_") + ".tar"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busybox", default="/bin/busybox")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    layer = rootfs_layer(args.busybox)
    wanted = set()
    for spec in IMAGES:
        data, digest = image_layout(spec, layer)
        path = os.path.join(args.out, file_name(spec["name"]))
        wanted.add(os.path.basename(path))
        try:
            with open(path, "rb") as f:
                if f.read() == data:
                    continue
        except FileNotFoundError:
            pass
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
        print(f"images: wrote {spec['name']} ({digest})", file=sys.stderr)
    for stale in sorted(os.listdir(args.out)):
        if stale.endswith(".tar") and stale not in wanted:
            os.remove(os.path.join(args.out, stale))


if __name__ == "__main__":
    main()
