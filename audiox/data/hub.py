"""Downloads for the full profile: URL + sha256 -> a verified file in the cache, or a clear error.

Like d2l's data hub, every remote asset is a name mapped to a URL and a checksum. A
download is written to ``<name>.part`` and only renamed into place once its checksum
matches, so a failed or interrupted download never leaves a half-written file where
the loader would take it for a good one. Archives are extracted into a temporary
folder that is renamed into place only when extraction finished.

>>> import hashlib, tempfile
>>> from pathlib import Path
>>> src = Path(tempfile.mkdtemp()) / "hello.txt"
>>> _ = src.write_text("hello")
>>> digest = hashlib.sha256(b"hello").hexdigest()
>>> path = download(src.as_uri(), Path(tempfile.mkdtemp()) / "hello.txt", sha256=digest)
>>> path.read_text()
'hello'
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm


class DownloadError(RuntimeError):
    """A download or extraction failed; the message says how to get the files by hand."""


def sha256sum(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _help(url: str, dest: Path, manual: str | None) -> str:
    by_hand = manual or f"download {url} yourself and save it as {dest}"
    return (
        f"To continue: {by_hand}; or set the cache folder with AUDIOX_CACHE; or run the course "
        f"without network with AUDIOX_PROFILE=offline (SynthSounds, the keyword set and the shipped tiny models)."
    )


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None,
    manual: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """Fetch ``url`` to ``dest`` unless a file with the right checksum is already there.

    Args:
        url: http(s) or file URL.
        dest: final path in the cache.
        sha256: expected hex digest; ``None`` only for assets whose publisher gives none
            (the digest is then printed so it can be pinned).
        manual: how to obtain the file by hand, for the error message.
    """
    dest = Path(dest)
    if dest.exists():
        if sha256 is None or sha256sum(dest) == sha256:
            return dest
        dest.unlink()  # a wrong file in the cache is as bad as none: fetch again
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=total is None) as bar:
                while block := response.read(1 << 20):
                    out.write(block)
                    bar.update(len(block))
        got = sha256sum(part)
        if sha256 is not None and got != sha256:
            raise DownloadError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}.")
        if sha256 is None:
            print(f"{dest.name}: sha256 {got} (no published checksum; pin this one)")
        os.replace(part, dest)
    except BaseException as err:
        part.unlink(missing_ok=True)
        if isinstance(err, KeyboardInterrupt):
            raise
        reason = err if isinstance(err, DownloadError) else f"{type(err).__name__}: {err}"
        raise DownloadError(f"could not download {url} to {dest} ({reason}). {_help(url, dest, manual)}") from err
    return dest


def extract(archive: Path, dest_dir: Path) -> Path:
    """Unpack a zip or tar archive into ``dest_dir`` atomically (all or nothing)."""
    archive, dest_dir = Path(archive), Path(dest_dir)
    if dest_dir.exists():
        return dest_dir
    tmp = Path(tempfile.mkdtemp(prefix=dest_dir.name + ".", dir=dest_dir.parent))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                tf.extractall(tmp, filter="data")
        else:
            raise DownloadError(f"{archive} is neither a zip nor a tar archive; delete it and download again.")
        os.replace(tmp, dest_dir)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, (DownloadError, KeyboardInterrupt)):
            raise
        raise DownloadError(f"could not extract {archive} ({err}); delete it and download again.") from err
    return dest_dir


def find_dataset_root(folder: Path, marker: str) -> Path | None:
    """``folder`` or its single sub-folder (an archive's top folder) that holds ``marker``."""
    folder = Path(folder)
    if (folder / marker).exists():
        return folder
    if folder.is_dir():
        inside = [child for child in folder.iterdir() if child.is_dir() and (child / marker).exists()]
        if len(inside) == 1:
            return inside[0]
    return None


def download_and_extract(url: str, sha256: str | None, folder: Path, manual: str) -> Path:
    """Download an archive next to ``folder``, verify it, unpack it into ``folder``, drop the archive.

    All or nothing: a failed download, checksum or extraction raises :class:`DownloadError`
    (with ``manual``, how to place the files by hand) and leaves neither the archive nor a
    partly unpacked folder in the cache. The archive is deleted once unpacked; the
    unpacked folder is what later runs read.
    """
    folder = Path(folder)
    archive = folder.with_name(folder.name + "-" + url.rsplit("/", 1)[-1])
    download(url, archive, sha256=sha256, manual=manual)
    try:
        extract(archive, folder)
    except DownloadError as err:
        raise DownloadError(
            f"{url} was downloaded but could not be unpacked ({err}); the archive was removed from the cache. "
            f"To continue: {manual}; or run without network with AUDIOX_PROFILE=offline."
        ) from err
    finally:
        archive.unlink(missing_ok=True)  # a bad archive must not be reused; a good one is no longer needed
    return folder


def fetch_dataset(folder: Path, marker: str, url: str, sha256: str | None, *, root=None, download: bool = True) -> Path:
    """The folder of a downloadable dataset, the one holding ``marker`` (e.g. ``meta/esc50.csv``).

    ``root`` (a folder the user unpacked by hand) wins and nothing is downloaded. Otherwise the
    cache ``folder`` is used, after downloading and unpacking ``url`` into it when it is missing
    and ``download`` is allowed.
    """
    if root is not None:
        return find_dataset_root(Path(root), marker) or Path(root)
    if download and not folder.exists():
        manual = (
            f"download {url} yourself and unpack it into {folder} (so that {marker} is in {folder} "
            f"or in its one sub-folder), or pass root= the unpacked folder"
        )
        download_and_extract(url, sha256, folder, manual)
    return find_dataset_root(folder, marker) or folder


def save_atomically(obj, path: Path) -> Path:
    """``torch.save`` to a temporary file next to ``path``, then rename it into place.

    An interrupted run, or two notebooks writing at once, never leaves a half-written file under
    the real name: every cache (embeddings, concept dictionaries) and shipped weight goes through here.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # torch.save writes the file's name into the archive: saving under the final name, in a private
    # folder next to it, keeps the bytes (and a shipped weight's sha256) the same from run to run
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp") as tmp_dir:
        tmp = Path(tmp_dir) / path.name
        torch.save(obj, tmp)
        os.replace(tmp, path)
    return path
