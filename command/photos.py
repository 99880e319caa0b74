"""Task photos from field phones: size and type checked before anything is stored (the type from
the file's own magic bytes, not from what the client claims)."""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.files.base import ContentFile

from command.actions import DispatchError
from command.actor import Actor
from command.models import Photo

MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PHOTOS_PER_TASK = 20
MAGIC = ((b"\xff\xd8\xff", "image/jpeg", "jpg"), (b"\x89PNG\r\n\x1a\n", "image/png", "png"))


def sniff(head: bytes) -> tuple[str, str] | None:
    for magic, content_type, ext in MAGIC:
        if head.startswith(magic):
            return content_type, ext
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", "webp"
    return None


def do_add_photo(actor: Actor, task_id: int, upload: Any) -> Photo:
    task = actor.tasks().filter(id=task_id).first()
    if task is None:
        raise DispatchError(404, f"no task {task_id} in your jurisdiction")
    if upload.size is None or upload.size > MAX_PHOTO_BYTES:
        raise DispatchError(413, f"a photo is at most {MAX_PHOTO_BYTES // (1024 * 1024)} MB")
    data = upload.read(MAX_PHOTO_BYTES + 1)
    if len(data) > MAX_PHOTO_BYTES:
        raise DispatchError(413, f"a photo is at most {MAX_PHOTO_BYTES // (1024 * 1024)} MB")
    kind = sniff(data[:16])
    if kind is None:
        raise DispatchError(415, "a photo is a JPEG, PNG or WebP image")
    if task.photos.count() >= MAX_PHOTOS_PER_TASK:
        raise DispatchError(422, f"a task holds at most {MAX_PHOTOS_PER_TASK} photos")
    content_type, ext = kind
    digest = hashlib.sha256(data).hexdigest()
    photo = Photo(task=task, content_type=content_type, size=len(data), sha256=digest, uploaded_by_id=actor.user_id)
    photo.file.save(f"{task.pk}-{digest[:16]}.{ext}", ContentFile(data), save=False)
    photo.save()
    return photo


def photo_for(actor: Actor, task_id: int, photo_id: int) -> Photo:
    photo = Photo.objects.filter(id=photo_id, task__in=actor.tasks().filter(id=task_id)).first()
    if photo is None:
        raise DispatchError(404, "no such photo in your jurisdiction")
    return photo
