"""A full media volume (a 2 MB tmpfs as MEDIA_ROOT) during a land-cover upload
(through the API) and a project-document upload (the registry's service, as
the project form calls it): a clear translated error, no half-written file
left behind, no row saved."""

import os
import subprocess

import numpy as np
import pytest

from tests.estimation.conftest import write_landcover
from tests.faults.stack import run

pytestmark = pytest.mark.production_stack

FREE_BYTES = 64 * 1024


@pytest.fixture
def full_media(stack):
    """MEDIA_ROOT on a 2 MB tmpfs, filled up to FREE_BYTES; unmounted after."""
    run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(stack.media)])
    try:
        yield stack.media
    finally:
        subprocess.run(["umount", "-l", str(stack.media)], timeout=30, check=False)


def fill(folder, *, leave: int) -> None:
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    (folder / "filler").write_bytes(b"\0" * max(0, free - leave))


def files(folder) -> set[str]:
    return {
        os.path.relpath(os.path.join(root, name), folder)
        for root, _dirs, names in os.walk(folder)
        for name in names
    }


def test_a_full_media_volume_refuses_uploads_cleanly(stack, full_media, tmp_path):
    small = write_landcover(tmp_path / "small.tif", width=20, height=20)
    seeded = stack.django("seed_estimation", raster=str(small), boundary_side_m=500)
    fill(full_media, leave=FREE_BYTES)
    before = files(full_media)

    # A land-cover map bigger than the room left, through the API.
    codes = np.random.default_rng(1).integers(1, 17, (600, 600), dtype=np.uint8)
    big = write_landcover(tmp_path / "big.tif", width=600, height=600, codes=codes)
    assert big.stat().st_size > 4 * FREE_BYTES
    web = stack.web(workers=1, threads=2)
    api = web.session(seeded["token"])
    answers = {}
    for language in ("en", "zh-CN"):
        with big.open("rb") as handle:
            response = api.post(
                f"{web.base}/api/v1/landcover-datasets/",
                data={
                    "organization": seeded["owner"],
                    "name_zh": "满盘",
                    "name_en": "Full disk",
                    "product": "modis-igbp",
                    "year": 2019,
                    "scheme": "modis-igbp",
                },
                files={"file": ("big.tif", handle, "image/tiff")},
                headers={"Accept-Language": language},
                timeout=60,
            )
        assert response.status_code == 507, response.text[:500]
        assert response.headers["Content-Type"].startswith("application/json")
        answers[language] = response.json()
    assert answers["en"]["code"] == "storage_full"
    assert "big.tif was not saved" in answers["en"]["message"]
    assert "big.tif" in answers["zh-CN"]["message"]
    assert answers["zh-CN"]["message"] != answers["en"]["message"], "not translated"
    listed = api.get(f"{web.base}/api/v1/landcover-datasets/", timeout=30).json()
    assert [d["name_en"] for d in listed["results"]] == ["Fault test"]  # no row
    assert files(full_media) == before  # no half-written file

    # A project document bigger than the room left.
    document = stack.django("upload_document", pdf_bytes=4 * FREE_BYTES)
    assert document["class"] == "StorageFull", document
    assert document["code"] == "storage_full"
    assert "survey.pdf was not saved" in document["message"]["en"]
    assert document["message"]["zh-hans"] != document["message"]["en"], "not translated"
    assert document["rows"] == 0
    assert files(full_media) == before

    # Room again: the same upload succeeds (nothing was left in its way).
    (full_media / "filler").unlink()
    with big.open("rb") as handle:
        response = api.post(
            f"{web.base}/api/v1/landcover-datasets/",
            data={
                "organization": seeded["owner"],
                "name_zh": "满盘",
                "name_en": "Full disk",
                "product": "modis-igbp",
                "year": 2019,
                "scheme": "modis-igbp",
            },
            files={"file": ("big.tif", handle, "image/tiff")},
            timeout=60,
        )
    assert response.status_code == 201, response.text[:500]
    stack.verify_ledger()
