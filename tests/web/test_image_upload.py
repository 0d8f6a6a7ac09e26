"""Uploading images: a zip (or .tar.gz) of class folders becomes an image dataset whose page shows
class counts, sizes, thumbnails and the files it skipped; a bad archive gets a clear message next
to the file field and leaves no row and no file behind; the search form offers only what fits."""

import gzip
import io
import struct
import tarfile
import zipfile

import pytest
from django.conf import settings
from django.urls import reverse

from tests.web.helpers import stored_dataset_files, upload, upload_dataset
from webapp.datasets.models import Dataset

pytestmark = pytest.mark.django_db


def png_bytes(folder, label: str) -> bytes:
    return sorted((folder / label).glob("*.png"))[0].read_bytes()


def write_zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_a_zip_of_class_folders_becomes_an_image_dataset(alice_client, alice, digits_zip):
    dataset = upload_dataset(alice_client, digits_zip)
    assert dataset.owner == alice and dataset.rows == 400 and dataset.file.name.endswith(".npz")
    image = dataset.image
    assert image["classes"] == [[str(k), 40] for k in range(10)]  # (class, images), as JSON keeps it
    assert (image["height"], image["width"], image["channels"]) == (8, 8, 1)
    page = alice_client.get(reverse("dataset_detail", args=[dataset.pk])).content.decode()
    assert "400</strong> images in <strong>10</strong> classes" in page
    assert (
        '<strong id="dataset-rows">400</strong> images' in page and '<strong id="dataset-classes">10</strong>' in page
    )
    assert "<h2>Warnings</h2>" not in page and "Leaks into the target" not in page  # pixels are not columns
    assert page.count('class="thumb"') == 60 and page.count("data:image/png;base64,") >= 60
    assert 'id="preview"' not in page and ">p0<" not in page  # pixels are not listed as columns
    assert '<option value="label" selected>label</option>' in page
    assert '<option value="regression"' not in page
    assert '<option value="none" selected>' in page  # grey digits: no augmentation unless asked for


def test_the_uploader_may_choose_the_image_size(alice_client, digits_zip):
    with open(digits_zip, "rb") as handle:
        response = alice_client.post(reverse("dataset_upload"), {"file": handle, "image_size": "16"})
    assert response.status_code == 302
    dataset = Dataset.objects.get()
    assert (dataset.image["height"], dataset.image["width"], dataset.column_count) == (16, 16, 16 * 16 + 1)


@pytest.mark.parametrize("size", ["4", "65", "big"])
def test_an_image_size_out_of_range_is_refused_by_its_field(alice_client, digits_zip, size):
    with open(digits_zip, "rb") as handle:
        response = alice_client.post(reverse("dataset_upload"), {"file": handle, "image_size": size})
    assert response.status_code == 400 and response.context["form"].errors["image_size"]
    assert 'id="image_size-errors"><p class="error"' in response.content.decode()
    assert not Dataset.objects.exists()


def test_a_tar_gz_works_too(alice_client, digit_pngs, tmp_path):
    path = tmp_path / "digits.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for label in ("1", "2"):
            for png in sorted((digit_pngs / label).glob("*.png"))[:10]:
                archive.add(png, arcname=f"{label}/{png.name}")
    dataset = upload_dataset(alice_client, path)
    assert dataset.rows == 20 and len(dataset.image["classes"]) == 2


def test_a_corrupt_image_is_skipped_and_listed_on_the_page(alice_client, digit_pngs, tmp_path):
    members = {f"{label}/{n}.png": png_bytes(digit_pngs, label) for label in ("1", "2") for n in range(6)}
    members["2/broken.png"] = b"\x89PNG\r\n\x1a\n" + b"not really a png"
    dataset = upload_dataset(alice_client, write_zip(tmp_path / "some_broken.zip", members))
    assert dataset.rows == 12 and dataset.image["skipped_count"] == 1
    page = alice_client.get(reverse("dataset_detail", args=[dataset.pk])).content.decode()
    assert 'id="skipped-images"' in page and "2/broken.png" in page


def bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("1/a.png", b"\0" * (40 * 2**20))  # 40 MB of zeros stored in ~40 KB
        archive.writestr("2/b.png", b"\0" * 100)
    return buffer.getvalue()


def symlink_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("1/a.png", b"x")
        link = zipfile.ZipInfo("2/b.png")
        link.external_attr = 0o120777 << 16  # a symbolic link
        archive.writestr(link, "/etc/passwd")
    return buffer.getvalue()


def tar_header_bomb(kind: bytes):
    """A .tar.gz whose first header is a 1 MB GNU long name (b"L") or pax header (b"x")."""

    def build() -> tuple[str, bytes]:
        header = tarfile.TarInfo("././@LongLink")
        header.type, header.size = kind, 2**20
        member = tarfile.TarInfo("1/a.png")
        tar = header.tobuf(format=tarfile.USTAR_FORMAT) + b"x" * 2**20 + member.tobuf() + bytes(1024)
        return "bad.tar.gz", gzip.compress(tar)

    return build


def count_lying_zip() -> bytes:
    """A real zip whose end record declares 65,000 entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("1/a.png", b"x")
        archive.writestr("2/b.png", b"x")
    data = bytearray(buffer.getvalue())
    struct.pack_into("<2H", data, data.rindex(zipfile.stringEndArchive) + 8, 65_000, 65_000)
    return bytes(data)


BAD_ARCHIVES = [
    # (id, members or raw bytes, words the message by the file field holds)
    ("one-class", {"1/a.png": "PNG", "1/b.png": "PNG"}, "class"),
    ("empty-class-folder", {"1/a.png": "PNG", "2/b.png": "PNG", "3/": b""}, "'3'"),
    ("path-traversal", {"1/a.png": "PNG", "../2/evil.png": "PNG"}, ".."),
    ("absolute-path", {"1/a.png": "PNG", "/2/evil.png": "PNG"}, "/2/evil.png"),
    ("no-images", {"1/notes.txt": b"hello", "2/more.txt": b"hi"}, "image"),
    ("zip-bomb", bomb, "expand"),
    ("symlink", symlink_zip, "link"),
    ("not-a-zip", b"PK\x03\x04 this is not really a zip", "zip"),
    ("tar-long-name", tar_header_bomb(b"L"), "long file name"),
    ("tar-pax-header", tar_header_bomb(b"x"), "pax header"),
    ("zip-count-in-end-record", count_lying_zip, "60,000 files"),
]


@pytest.mark.parametrize(
    ("members", "words"), [case[1:] for case in BAD_ARCHIVES], ids=[case[0] for case in BAD_ARCHIVES]
)
def test_a_bad_archive_is_refused_by_the_field_and_leaves_nothing(alice_client, digit_pngs, tmp_path, members, words):
    before = stored_dataset_files(settings.MEDIA_ROOT)
    path = tmp_path / "bad.zip"
    if callable(members):
        built = members()
        if isinstance(built, tuple):  # (file name, bytes)
            path = tmp_path / built[0]
            built = built[1]
        path.write_bytes(built)
    elif isinstance(members, bytes):
        path.write_bytes(members)
    else:
        png = png_bytes(digit_pngs, "1")
        write_zip(path, {name: png if data == "PNG" else data for name, data in members.items()})
    response = upload(alice_client, path)
    assert response.status_code == 400
    errors = " ".join(response.context["form"].errors["file"])
    assert words.lower() in errors.lower(), errors
    assert "Traceback" not in response.content.decode()
    assert not Dataset.objects.exists() and stored_dataset_files(settings.MEDIA_ROOT) == before


def test_the_conversion_runs_in_a_child_whose_memory_is_capped(alice_client, tmp_path, settings):
    """A 36 MB file is read in one piece: past glibc's largest mmap threshold (32 MB), so it always
    needs new address space. A child allowed 4 MB more than the web process maps fails with a clear
    message, and the web process goes on."""
    # 128 MB, not just past the mmap threshold: free heap that earlier tests left in this process
    # is already mapped, so a smaller member could be read inside it without new address space.
    settings.IMAGE_CONVERT_MEMORY_MB, settings.IMAGE_MAX_FILE_MB = 4, 256
    before = stored_dataset_files(settings.MEDIA_ROOT)
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("1/big.png", bytes(128 * 2**20))
        archive.writestr("2/small.png", b"x")
    response = upload(alice_client, path)
    assert response.status_code == 400
    errors = " ".join(response.context["form"].errors["file"])
    assert "more memory than this server allows for one upload (4 MB)" in errors, errors
    assert not Dataset.objects.exists() and stored_dataset_files(settings.MEDIA_ROOT) == before
