"""Flags on images (nova's: abuse, nice solve, should have solved...) and the staff's list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from skysolve.community.access import get_image, signed_in
from skysolve.community.models import Flag
from skysolve.submissions import services as submissions
from skysolve.submissions.models import UserImage

FLAG_KINDS = dict(Flag.KIND_CHOICES)


def flags_of(image: UserImage, viewer: submissions.Viewer) -> list[tuple[str, str, bool]]:
    """(kind, label, set by the viewer) for every kind of flag."""
    mine: set[str] = set()
    if viewer.user is not None:
        mine = set(
            Flag.objects.filter(user_image=image, user=viewer.user).values_list("kind", flat=True)
        )
    return [(kind, label, kind in mine) for kind, label in Flag.KIND_CHOICES]


def set_flags(image_id: int, viewer: submissions.Viewer, kinds: Sequence[str]) -> UserImage:
    """Make the viewer's flags on the image exactly ``kinds`` (nova's form posts them all)."""
    user = signed_in(viewer)
    image = get_image(image_id, viewer)
    unknown = sorted(set(kinds) - set(FLAG_KINDS))
    if unknown:
        raise submissions.ServiceError(f"no such flag: {', '.join(unknown)}")
    with transaction.atomic():
        Flag.objects.filter(user_image=image, user=user).exclude(kind__in=kinds).delete()
        for kind in set(kinds):
            try:
                with transaction.atomic():
                    Flag.objects.get_or_create(user_image=image, user=user, kind=kind)
            except IntegrityError:  # the same form posted twice at once
                pass
    return image


@dataclass(frozen=True)
class FlaggedImage:
    image_id: int
    filename: str
    owner: str
    counts: list[tuple[str, int]]
    latest: datetime


def flagged_images(kind: str = "") -> list[FlaggedImage]:
    """Every flagged image (private ones too: this is the staff's view), newest flag first."""
    flags = Flag.objects.select_related("user_image__submission__user")
    if kind:
        flags = flags.filter(kind=kind)
    by_image: dict[int, dict[str, int]] = {}
    latest: dict[int, datetime] = {}
    images: dict[int, UserImage] = {}
    for flag in flags.order_by("-created"):
        image = flag.user_image
        images[image.id] = image
        by_image.setdefault(image.id, {})
        by_image[image.id][flag.kind] = by_image[image.id].get(flag.kind, 0) + 1
        latest.setdefault(image.id, flag.created)
    out = []
    for image_id, counts in by_image.items():
        image = images[image_id]
        owner = image.submission.user
        out.append(
            FlaggedImage(
                image_id=image_id,
                filename=image.original_filename or f"image {image_id}",
                owner=owner.username if owner is not None else "anonymous",
                counts=[
                    (FLAG_KINDS[k], n) for k, _ in Flag.KIND_CHOICES if (n := counts.get(k, 0))
                ],
                latest=latest[image_id],
            )
        )
    out.sort(key=lambda item: item.latest, reverse=True)
    return out
