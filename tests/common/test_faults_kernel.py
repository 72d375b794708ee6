"""The kernel's answers to faults, without a real outage (tests/faults/ has
those): the cache answers a miss when Redis does not, an upload that fills
the disk leaves no partial file and refuses with a translated message, and
the API answers 503 for a database that does not and 507 for a full disk."""

import errno
import logging
import os

import pytest
import redis.exceptions
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.db import IntegrityError, InterfaceError, OperationalError
from rest_framework.permissions import AllowAny
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from common import cache as degrading_cache
from common.cache import DegradingRedisCache
from common.storage import StorageFull, save_field_file, storage_full
from registry.models import ProjectDocument

# Nothing listens on port 1: every call is refused at once.
NOBODY_LISTENS = "redis://127.0.0.1:1/0"


@pytest.fixture
def unavailable_cache(monkeypatch):
    monkeypatch.setattr(DegradingRedisCache, "_last_warning", float("-inf"))
    return DegradingRedisCache(
        NOBODY_LISTENS,
        {"OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}},
    )


def test_an_unavailable_cache_answers_as_a_miss(unavailable_cache):
    cache = unavailable_cache
    assert cache.get("k") is None
    assert cache.get("k", "fallback") == "fallback"
    assert cache.get_many(["a", "b"]) == {}
    assert cache.has_key("k") is False
    assert cache.add("k", 1) is False
    assert cache.set("k", 1) is None
    assert cache.set_many({"a": 1}) == []
    assert cache.touch("k") is False
    assert cache.delete("k") is False
    assert cache.delete_many(["a"]) is None
    assert cache.clear() is False


def test_incr_on_an_unavailable_cache_is_a_missing_key(unavailable_cache):
    # Callers (DRF's throttles, Django's cache helpers) treat ValueError as a
    # missing key and start counting again.
    with pytest.raises(ValueError, match="'hits' not found"):
        unavailable_cache.incr("hits")


def test_an_outage_is_logged_once_a_minute_not_once_a_request(
    unavailable_cache, caplog, monkeypatch
):
    clock = [1000.0]
    monkeypatch.setattr(degrading_cache.time, "monotonic", lambda: clock[0])
    with caplog.at_level(logging.WARNING, logger="common.cache"):
        unavailable_cache.get("a")
        unavailable_cache.set("b", 1)
        clock[0] += degrading_cache.WARNING_INTERVAL_SECONDS - 1
        unavailable_cache.get("c")
        clock[0] += 1
        unavailable_cache.get_many(["d"])
    warnings = [r.getMessage() for r in caplog.records if r.name == "common.cache"]
    assert warnings == [
        "Cache unavailable (ConnectionError during get): answering as a miss.",
        "Cache unavailable (ConnectionError during get_many): answering as a miss.",
    ]


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.TimeoutError("slow"),
        redis.exceptions.BusyLoadingError("loading"),
        redis.exceptions.ReadOnlyError("replica"),
        redis.exceptions.OutOfMemoryError("full"),
    ],
)
def test_each_kind_of_unavailability_is_a_miss(unavailable_cache, monkeypatch, error):
    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(unavailable_cache._cache, "get", failing)
    monkeypatch.setattr(unavailable_cache._cache, "set", failing)
    assert unavailable_cache.get("k", "fallback") == "fallback"
    assert unavailable_cache.set("k", 1) is None


def test_a_bug_in_the_caller_still_raises(unavailable_cache, monkeypatch):
    def buggy(*args, **kwargs):
        raise TypeError("not a Redis fault")

    monkeypatch.setattr(unavailable_cache._cache, "get", buggy)
    monkeypatch.setattr(unavailable_cache._cache, "set", buggy)
    with pytest.raises(TypeError):
        unavailable_cache.get("k")
    with pytest.raises(TypeError):
        unavailable_cache.set("k", 1)


class FillingStorage(FileSystemStorage):
    """Writes the first half of a file, then fails with ``error_number``."""

    def __init__(self, error_number, **kwargs):
        super().__init__(**kwargs)
        self.error_number = error_number

    def _save(self, name, content):
        half = content.read()[: content.size // 2]
        os.makedirs(os.path.dirname(self.path(name)), exist_ok=True)
        with open(self.path(name), "wb") as partial:
            partial.write(half)
        raise OSError(self.error_number, "simulated")


def _document_file(storage):
    document = ProjectDocument()
    field_file = document.file
    field_file.storage = storage
    return field_file


@pytest.fixture
def media(tmp_path):
    return tmp_path


def _files(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_a_full_disk_leaves_no_partial_file_and_refuses_in_words(media):
    storage = FillingStorage(errno.ENOSPC, location=media)
    field_file = _document_file(storage)
    with pytest.raises(StorageFull) as refusal:
        save_field_file(
            field_file,
            "plan.pdf",
            ContentFile(b"%PDF-" + b"x" * 1000),
            shown_name="forest-plan.pdf",
        )
    assert refusal.value.code == "storage_full"
    assert "forest-plan.pdf was not saved and nothing was changed" in str(
        refusal.value.messages[0]
    )
    assert _files(media) == []


@pytest.mark.parametrize("error_number", [errno.EDQUOT, errno.EFBIG])
def test_a_quota_or_file_size_limit_is_a_full_disk_too(media, error_number):
    storage = FillingStorage(error_number, location=media)
    with pytest.raises(StorageFull):
        save_field_file(_document_file(storage), "a.pdf", ContentFile(b"y" * 100))
    assert _files(media) == []


def test_another_io_error_is_not_called_a_full_disk_but_leaves_nothing(media):
    storage = FillingStorage(errno.EACCES, location=media)
    with pytest.raises(OSError) as error:
        save_field_file(_document_file(storage), "a.pdf", ContentFile(b"y" * 100))
    assert not isinstance(error.value, StorageFull)
    assert error.value.errno == errno.EACCES
    assert _files(media) == []


def test_a_saved_file_is_kept(media):
    field_file = _document_file(FileSystemStorage(location=media))
    save_field_file(field_file, "a.pdf", ContentFile(b"z" * 10))
    assert [p.read_bytes() for p in _files(media)] == [b"z" * 10]
    assert field_file.name.startswith("project-documents/")


def test_the_message_names_the_upload_in_chinese_too():
    from django.utils import translation

    with translation.override("zh-hans"):
        message = str(storage_full("地图.tif").messages[0])
    assert "地图.tif" in message
    assert "storage" not in message


def _answer(exception):
    class Raising(APIView):
        permission_classes = [AllowAny]
        authentication_classes = []

        def post(self, request):
            raise exception

    return Raising.as_view()(APIRequestFactory().post("/api/v1/x/"))


@pytest.mark.parametrize(
    "error", [OperationalError("server closed"), InterfaceError("connection gone")]
)
def test_a_database_that_does_not_answer_is_a_503_to_retry(error, caplog):
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        response = _answer(error)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.data["code"] == "database_unavailable"
    assert "same Idempotency-Key" in response.data["message"]
    assert any("POST /api/v1/x/" in r.getMessage() for r in caplog.records)


def test_a_constraint_violation_is_not_called_an_outage():
    # An IntegrityError is a bug to see (a 500 and its traceback), not a
    # moment's unavailability for the client to retry.
    with pytest.raises(IntegrityError):
        _answer(IntegrityError("duplicate key"))


def test_a_full_disk_is_a_507_with_the_refusals_words():
    response = _answer(storage_full("plan.pdf"))
    assert response.status_code == 507
    assert response.data["code"] == "storage_full"
    assert "plan.pdf was not saved" in response.data["message"]
    assert "Retry-After" not in response
