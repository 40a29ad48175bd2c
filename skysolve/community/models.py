"""What people add to images: albums, tags, comments and flags.

These were models of the submissions app; they moved here without touching
the database: each keeps its ``submissions_`` table (``db_table``), so no row
moves and raw SQL keeps working (see migration 0001).  This app builds on the
submissions app (its models point at images and jobs); the one link the other
way, ``Submission.album``, names :class:`Album` by string.

:class:`TaggedJob` lives here, beside the tags it indexes: it is a copy of
which jobs carry which tag, kept by :mod:`skysolve.community.tagcounts` as
tags and visibility change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import models
from django.utils import timezone

from skysolve.submissions.models import VISIBILITY_CHOICES, Job, RandomIdModel, UserImage


class Album(RandomIdModel):
    """A person's named collection of images; an upload may name one to put its images in."""

    owner: models.ForeignKey[User] = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="albums"
    )
    title: models.CharField[str, str] = models.CharField(max_length=200)
    description: models.TextField[str, str] = models.TextField(blank=True)
    publicly_visible: models.CharField[str, str] = models.CharField(
        max_length=1, choices=VISIBILITY_CHOICES, default="y"
    )
    created: models.DateTimeField[datetime, datetime] = models.DateTimeField(default=timezone.now)
    user_images: models.ManyToManyField[UserImage, Any] = models.ManyToManyField(
        UserImage, related_name="albums", blank=True
    )

    class Meta:
        db_table = "submissions_album"
        indexes = [
            models.Index(fields=["publicly_visible", "created", "id"], name="album_visible_created")
        ]
        constraints = [
            models.UniqueConstraint(fields=["owner", "title"], name="album_title_per_owner")
        ]

    def __str__(self) -> str:
        return self.title


class Tag(models.Model):
    """A word on images, written by a person or by the solver (objects in the field)."""

    text: models.CharField[str, str] = models.CharField(max_length=200, unique=True)
    #: Public images carrying the tag, kept by :mod:`skysolve.community.tagcounts`
    #: (the tag list shows it without counting a join of millions of rows).
    public_count: models.IntegerField[int, int] = models.IntegerField(default=0)
    #: Declared here rather than as ``UserImage.tags`` (the same rows and the
    #: same two names: ``tag.user_images``, ``user_image.tags``) so that the
    #: submissions app does not name the community's models.
    user_images: models.ManyToManyField[UserImage, Any] = models.ManyToManyField(
        UserImage, through="TaggedUserImage", related_name="tags"
    )

    class Meta:
        db_table = "submissions_tag"

    def __str__(self) -> str:
        return self.text


class TaggedUserImage(models.Model):
    """A tag on an image; ``machine`` tags are added by the solver (objects in field)."""

    user_image: models.ForeignKey[UserImage] = models.ForeignKey(
        UserImage, on_delete=models.CASCADE
    )
    tag: models.ForeignKey[Tag] = models.ForeignKey(Tag, on_delete=models.CASCADE)
    machine: models.BooleanField[bool, bool] = models.BooleanField(default=False)
    added_by: models.ForeignKey[User | None] = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True
    )
    added: models.DateTimeField[datetime, datetime] = models.DateTimeField(default=timezone.now)
    #: Whether the image (and its submission) is public, kept by
    #: :mod:`skysolve.community.tagcounts` (the counts and :class:`TaggedJob`
    #: follow it without looking the image up).
    public: models.BooleanField[bool, bool] = models.BooleanField(default=False)

    class Meta:
        db_table = "submissions_taggeduserimage"
        indexes = [
            # A tag's page and jobs_by_tag: its images, most recently tagged first.
            models.Index(fields=["tag", "id"], name="tagged_tag_id"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user_image", "tag", "machine"], name="one_tag_per_image"
            )
        ]


class Comment(RandomIdModel):
    """A comment on an image or on an album (exactly one of the two).

    Its author or the owner of what it is on may delete it.
    """

    author: models.ForeignKey[User] = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="comments"
    )
    user_image: models.ForeignKey[UserImage | None] = models.ForeignKey(
        UserImage, on_delete=models.CASCADE, null=True, blank=True, related_name="comments"
    )
    album: models.ForeignKey[Album | None] = models.ForeignKey(
        Album, on_delete=models.CASCADE, null=True, blank=True, related_name="comments"
    )
    text: models.TextField[str, str] = models.TextField()
    created: models.DateTimeField[datetime, datetime] = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "submissions_comment"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user_image__isnull=False, album__isnull=True)
                | models.Q(user_image__isnull=True, album__isnull=False),
                name="comment_on_one_thing",
            )
        ]

    def __str__(self) -> str:
        return f"comment {self.id} by {self.author.username}"


class Flag(models.Model):
    """One person's flag of one kind on an image (nova's flags); staff review them."""

    ABUSE = "abuse"
    NICE = "nice"
    SHOULD_HAVE_SOLVED = "should_have_solved"
    GOOD_DEMO = "good_demo"
    BUG = "bug"
    KIND_CHOICES = [
        (ABUSE, "report abuse"),
        (NICE, "nice solve"),
        (SHOULD_HAVE_SOLVED, "should have solved"),
        (GOOD_DEMO, "good demo"),
        (BUG, "report bug"),
    ]

    user_image: models.ForeignKey[UserImage] = models.ForeignKey(
        UserImage, on_delete=models.CASCADE, related_name="flags"
    )
    user: models.ForeignKey[User] = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="flags"
    )
    kind: models.CharField[str, str] = models.CharField(max_length=20, choices=KIND_CHOICES)
    created: models.DateTimeField[datetime, datetime] = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "submissions_flag"
        constraints = [
            models.UniqueConstraint(fields=["user_image", "user", "kind"], name="one_flag_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.kind} on image {self.user_image_id} by {self.user_id}"  # type: ignore[attr-defined]


class TaggedJob(models.Model):
    """A job whose image carries a tag, with what ``/api/jobs_by_tag`` reads of it.

    Kept by :mod:`skysolve.community.tagcounts` (a tag put on or taken off
    an image, an image's visibility) and :func:`~skysolve.submissions.services.retry_job`
    (``queued_at``), so that a tag's public jobs in their order are one range
    of one index instead of a lookup of each image's jobs.
    """

    tag: models.ForeignKey[Tag] = models.ForeignKey(Tag, on_delete=models.CASCADE)
    job: models.ForeignKey[Job] = models.ForeignKey(Job, on_delete=models.CASCADE)
    public: models.BooleanField[bool, bool] = models.BooleanField(default=False)
    queued_at: models.DateTimeField[datetime, datetime] = models.DateTimeField()

    class Meta:
        db_table = "submissions_taggedjob"
        indexes = [
            models.Index(
                fields=["tag", "queued_at", "job"],
                name="taggedjob_public",
                condition=models.Q(public=True),
            ),
        ]
        constraints = [models.UniqueConstraint(fields=["tag", "job"], name="one_job_per_tag")]
