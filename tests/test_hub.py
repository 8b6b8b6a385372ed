"""audiox.data.hub: checksummed downloads and atomic extraction; nothing half-written is left."""

import hashlib
import io
import tarfile
import zipfile

import pytest

from audiox.data import hub


def _zip_bytes():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("top/a.txt", "a")
        zf.writestr("top/sub/b.txt", "b")
    return buffer.getvalue()


@pytest.fixture
def served(tmp_path):
    src = tmp_path / "src" / "asset.zip"
    src.parent.mkdir()
    src.write_bytes(_zip_bytes())
    return src, hashlib.sha256(src.read_bytes()).hexdigest()


def test_download_verifies_and_caches(served, tmp_path):
    src, digest = served
    dest = tmp_path / "cache" / "asset.zip"
    assert hub.download(src.as_uri(), dest, sha256=digest).read_bytes() == src.read_bytes()
    src.unlink()  # a second call must not touch the network (here: the vanished source)
    assert hub.download(src.as_uri(), dest, sha256=digest) == dest


def test_checksum_mismatch_leaves_nothing(served, tmp_path):
    src, _ = served
    dest = tmp_path / "cache" / "asset.zip"
    with pytest.raises(hub.DownloadError) as err:
        hub.download(src.as_uri(), dest, sha256="0" * 64, manual="put asset.zip in the cache")
    message = str(err.value)
    assert "checksum mismatch" in message and src.as_uri() in message
    assert "put asset.zip in the cache" in message and "AUDIOX_PROFILE=offline" in message
    assert list(dest.parent.iterdir()) == []


def test_unreachable_url_leaves_nothing(tmp_path):
    dest = tmp_path / "cache" / "x.zip"
    with pytest.raises(hub.DownloadError, match=r"could not download file:.*AUDIOX_PROFILE=offline"):
        hub.download((tmp_path / "missing.zip").as_uri(), dest, sha256=None)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_a_wrong_cached_file_is_replaced(served, tmp_path):
    src, digest = served
    dest = tmp_path / "cache" / "asset.zip"
    dest.parent.mkdir()
    dest.write_bytes(b"truncated")
    assert hub.download(src.as_uri(), dest, sha256=digest).read_bytes() == src.read_bytes()


def test_extract_zip_and_tar(served, tmp_path):
    src, _ = served
    out = hub.extract(src, tmp_path / "unzipped")
    assert (out / "top" / "sub" / "b.txt").read_text() == "b"
    tar_path = tmp_path / "a.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tf:
        tf.add(out / "top", arcname="top")
    assert (hub.extract(tar_path, tmp_path / "untarred") / "top" / "a.txt").read_text() == "a"


def test_extract_corrupt_archive_leaves_nothing(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(_zip_bytes()[:40])
    with pytest.raises(hub.DownloadError, match="delete it and download again"):
        hub.extract(bad, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zip"]
