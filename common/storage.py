"""Storing an upload without leaving half a file behind.

Django's file storage writes straight to the final name; when the disk fills
half-way it raises ``OSError`` and leaves the partial file there, with no row
pointing at it. ``save_field_file`` removes that partial file and turns a full
disk into ``StorageFull``: a refusal with a translated message, which the
services' transactions roll back like any other (nothing is saved) and the API
answers with 507.
"""

import errno
import logging

from django.utils.translation import gettext_lazy

from common.errors import Refusal

logger = logging.getLogger(__name__)

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class StorageFull(Refusal):
    """The server has no room for the file; nothing was saved."""


def is_disk_full(error: OSError) -> bool:
    return error.errno in DISK_FULL_ERRNOS


def storage_full(name: str) -> StorageFull:
    # Lazy, with params: the message is put in words in the language of
    # whoever reads it (the API's answer, a form, a log), not where it was raised.
    return StorageFull(
        gettext_lazy(
            "The registry's file storage is full, so %(name)s was not saved and "
            "nothing was changed. Please tell the registry operator, then try "
            "again."
        ),
        code="storage_full",
        params={"name": name},
    )


def save_field_file(field_file, name: str, content, *, shown_name: str = "") -> None:
    """``field_file.save(name, content, save=False)``, leaving no partial file
    when it fails; a full disk raises ``StorageFull``."""
    storage = field_file.storage
    field = field_file.field
    # The name the storage is about to use (it picks the same one below, as
    # nothing else writes this content-derived name at this moment).
    target = storage.get_available_name(
        field.generate_filename(field_file.instance, name),
        max_length=field.max_length,
    )
    try:
        field_file.save(name, content, save=False)
    except OSError as error:
        _remove_partial(storage, target, content.size)
        if is_disk_full(error):
            logger.error(
                "The media storage is full: %s (%s bytes) was not saved.",
                target,
                content.size,
            )
            raise storage_full(shown_name or name) from error
        raise


def _remove_partial(storage, target: str, full_size: int) -> None:
    # Only a file shorter than the upload is ours and partial: a complete file
    # of that name would be another upload of the same content.
    try:
        if storage.exists(target) and storage.size(target) < full_size:
            storage.delete(target)
    except OSError:
        logger.exception("Could not remove the partial upload %s.", target)
