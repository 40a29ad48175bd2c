"""The data model of submissions, their images and the jobs that solve them.

A :class:`Submission` is one request (an upload, a URL or an x/y list).  It
holds one :class:`UserImage` per image (one, or one per star list of a batch
or per image of a tar/zip archive), and each user image is solved by one or
more :class:`Job` (one per attempt the user asks for; a worker restart keeps
the same job).  Submissions, user images and jobs have random public ids (see
:mod:`skysolve.submissions.ids`).

Who submits (profiles, API keys and sessions) is :mod:`skysolve.accounts.models`;
what people add to images (albums, tags, comments, flags) is
:mod:`skysolve.community.models`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import User
from django.db import IntegrityError, models, transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from skysolve.engine.results import CALIBRATION_FIELDS, nova_orientation
from skysolve.submissions.ids import random_id
from skysolve.submissions.sky import sky_columns

if TYPE_CHECKING:
    from django.db.models.fields.related_descriptors import RelatedManager

LICENCE_COMMERCIAL_CHOICES = [("d", "use default"), ("y", "yes"), ("n", "no")]
LICENCE_MODIFICATIONS_CHOICES = [
    ("d", "use default"),
    ("y", "yes"),
    ("n", "no"),
    ("sa", "yes, share alike"),
]
VISIBILITY_CHOICES = [("y", "public"), ("n", "private")]


class RandomIdModel(models.Model):
    """A model whose primary key is a random id, retried on collision."""

    id: models.IntegerField[int, int] = models.IntegerField(primary_key=True, editable=False)

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding or self.pk is not None:
            super().save(*args, **kwargs)
            return
        kwargs["force_insert"] = True
        for _ in range(20):
            self.pk = random_id()
            try:
                # The savepoint keeps an outer transaction usable after a collision.
                with transaction.atomic():
                    super().save(*args, **kwargs)
                return
            except IntegrityError:
                if not type(self).objects.filter(pk=self.pk).exists():
                    self.pk = None
                    raise
        self.pk = None
        raise IntegrityError(f"no free random id for {type(self).__name__} after 20 tries")


class Submission(RandomIdModel):
    SOURCE_UPLOAD = "upload"
    SOURCE_URL = "url"
    SOURCE_XY = "xy"
    SOURCE_CHOICES = [(SOURCE_UPLOAD, "file upload"), (SOURCE_URL, "URL"), (SOURCE_XY, "x/y list")]

    user: models.ForeignKey[User | None] = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="submissions"
    )
    #: Key of the anonymous API session that made it; that session owns it.
    anonymous_session: models.CharField[str, str] = models.CharField(
        max_length=64, blank=True, db_index=True
    )
    created: models.DateTimeField[datetime, datetime] = models.DateTimeField(
        default=timezone.now, db_index=True
    )
    source: models.CharField[str, str] = models.CharField(max_length=8, choices=SOURCE_CHOICES)
    original_filename: models.CharField[str, str] = models.CharField(max_length=255, blank=True)
    url: models.URLField[str, str] = models.URLField(max_length=2000, blank=True)
    #: Path of the stored upload relative to SKYSOLVE_UPLOAD_DIR (a generated name).
    disk_file: models.CharField[str, str] = models.CharField(max_length=255, blank=True)
    file_hash: models.CharField[str, str] = models.CharField(
        max_length=40, blank=True, db_index=True
    )
    file_size: models.BigIntegerField[int | None, int | None] = models.BigIntegerField(
        null=True, blank=True
    )
    #: x/y star list ({"x": [...], "y": [...], "flux": [...] or null}) for SOURCE_XY.
    star_list: models.JSONField[Any, Any] = models.JSONField(null=True, blank=True)
    #: SolveParameters.to_dict() of the request (validated at submission time).
    parameters: models.JSONField[Any, Any] = models.JSONField(default=dict)
    #: The request-json as sent, minus the session (for support and reproduction).
    request_json: models.JSONField[Any, Any] = models.JSONField(default=dict)
    allow_commercial_use: models.CharField[str, str] = models.CharField(
        max_length=2, choices=LICENCE_COMMERCIAL_CHOICES, default="d"
    )
    allow_modifications: models.CharField[str, str] = models.CharField(
        max_length=2, choices=LICENCE_MODIFICATIONS_CHOICES, default="d"
    )
    publicly_visible: models.CharField[str, str] = models.CharField(
        max_length=1, choices=VISIBILITY_CHOICES, default="y"
    )
    #: The album its images go into (named by the uploader).  Referenced by
    #: name: the community app builds on this one, so this module imports none
    #: of it (``community.Album``; typed loosely for the same reason).
    album: models.ForeignKey[Any] = models.ForeignKey(
        "community.Album",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="submissions",
    )
    #: When a client last asked for its status (kept only with SKYSOLVE_ABANDON_SECONDS).
    last_polled: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True
    )
    processing_started: models.DateTimeField[datetime | None, datetime | None] = (
        models.DateTimeField(null=True, blank=True)
    )
    processing_finished: models.DateTimeField[datetime | None, datetime | None] = (
        models.DateTimeField(null=True, blank=True)
    )
    error_message: models.TextField[str, str] = models.TextField(blank=True)

    class Meta:
        indexes = [
            # "My submissions": one user's submissions, newest first.
            models.Index(fields=["user", "created", "id"], name="submission_user_created"),
        ]

    if TYPE_CHECKING:
        user_images: RelatedManager[UserImage]

    def __str__(self) -> str:
        return f"submission {self.id}"

    @property
    def is_public(self) -> bool:
        return self.publicly_visible == "y"

    def jobs_created(self) -> None:
        """Mark the submission processed: its jobs exist (they need not be solved).

        This is nova's ``processing_finished``: set once the submission's images
        and jobs are made, before anything is solved.  KStars waits for it to
        leave "None" and gives up after about three minutes, so it must not
        wait for a queued solve.  It is never cleared again (not by a retry).
        """
        now = timezone.now()
        Submission.objects.filter(pk=self.pk, processing_finished__isnull=True).update(
            processing_started=Coalesce("processing_started", models.Value(now)),
            processing_finished=now,
        )

    def update_processing_times(self) -> None:
        """Mark the submission processed once none of its jobs is queued or running.

        A fallback for a submission whose preparation failed (a URL that could
        not be fetched, an unreadable archive) before :meth:`jobs_created`.
        """
        if self.processing_finished is not None:
            return
        pending = Job.objects.filter(user_image__submission=self).exclude(status__in=Job.FINISHED)
        if not pending.exists():
            now = timezone.now()
            Submission.objects.filter(pk=self.pk, processing_finished__isnull=True).update(
                processing_started=Coalesce("processing_started", models.Value(now)),
                processing_finished=now,
            )
            self.refresh_from_db(fields=["processing_started", "processing_finished"])


class UserImage(RandomIdModel):
    submission: models.ForeignKey[Submission] = models.ForeignKey(
        Submission, on_delete=models.CASCADE, related_name="user_images"
    )
    user: models.ForeignKey[User | None] = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="user_images"
    )
    original_filename: models.CharField[str, str] = models.CharField(max_length=255, blank=True)
    description: models.TextField[str, str] = models.TextField(blank=True)
    publicly_visible: models.CharField[str, str] = models.CharField(
        max_length=1, choices=VISIBILITY_CHOICES, default="y"
    )
    created: models.DateTimeField[datetime, datetime] = models.DateTimeField(
        default=timezone.now, db_index=True
    )
    #: This image's own star list when the submission was a batch of lists
    #: (same shape as Submission.star_list); None: the submission's input.
    star_list: models.JSONField[Any, Any] = models.JSONField(null=True, blank=True)
    #: This image's own file, relative to SKYSOLVE_UPLOAD_DIR, when it came out
    #: of an archive (a generated name); blank: the submission's file.
    disk_file: models.CharField[str, str] = models.CharField(max_length=255, blank=True)
    #: Its number among the images of the submission's archive (0 first); None
    #: when the submission was not an archive, or is not expanded yet.
    archive_member: models.IntegerField[int | None, int | None] = models.IntegerField(
        null=True, blank=True
    )

    class Meta:
        indexes = [
            # "My images": one user's images, newest first.
            models.Index(fields=["user", "created", "id"], name="userimage_user_created"),
        ]
        constraints = [
            # An archive is expanded once: a second expansion cannot add its images again.
            models.UniqueConstraint(
                fields=["submission", "archive_member"], name="one_image_per_archive_member"
            )
        ]

    if TYPE_CHECKING:
        jobs: RelatedManager[Job]

    def __str__(self) -> str:
        return f"user image {self.id}"

    @property
    def is_public(self) -> bool:
        return self.publicly_visible == "y"

    def latest_job(self) -> Job | None:
        return self.jobs.order_by("-queued_at", "-id").first()


class Job(RandomIdModel):
    """One solve of one user image, and its place in the queue.

    ``status`` is the queue state; ``stage`` the pipeline stage while running.
    nova's API status is derived by :meth:`nova_status`.
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"
    STATUS_CHOICES = [
        (QUEUED, "queued"),
        (RUNNING, "running"),
        (SUCCESS, "success"),
        (FAILURE, "failure"),
        (CANCELLED, "cancelled"),
    ]
    FINISHED = (SUCCESS, FAILURE, CANCELLED)

    user_image: models.ForeignKey[UserImage] = models.ForeignKey(
        UserImage, on_delete=models.CASCADE, related_name="jobs"
    )
    #: Fairness key: "user:<id>" or "anon:<session>" (round-robin across these).
    owner_key: models.CharField[str, str] = models.CharField(max_length=80, db_index=True)
    status: models.CharField[str, str] = models.CharField(
        max_length=10, choices=STATUS_CHOICES, default=QUEUED
    )
    #: "preparing", "extracting", "solving", "annotating", "finished" (from the pipeline).
    stage: models.CharField[str, str] = models.CharField(max_length=20, blank=True)
    queued_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(default=timezone.now)
    started_at: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True
    )
    finished_at: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True
    )
    attempts: models.IntegerField[int, int] = models.IntegerField(default=0)
    worker_id: models.CharField[str, str] = models.CharField(max_length=100, blank=True)
    lease_expires: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True
    )
    #: When a client last asked for its status (kept only with SKYSOLVE_ABANDON_SECONDS).
    last_polled: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True
    )
    cancel_requested: models.BooleanField[bool, bool] = models.BooleanField(default=False)
    error_code: models.CharField[str, str] = models.CharField(max_length=40, blank=True)
    error_message: models.TextField[str, str] = models.TextField(blank=True)
    log: models.TextField[str, str] = models.TextField(blank=True)
    #: SolveResult.to_json() of the finished solve.
    result: models.JSONField[Any, Any] = models.JSONField(null=True, blank=True)
    # Calibration as columns, for cone search and sorting in the web site.
    ra: models.FloatField[float | None, float | None] = models.FloatField(null=True, blank=True)
    dec: models.FloatField[float | None, float | None] = models.FloatField(null=True, blank=True)
    radius: models.FloatField[float | None, float | None] = models.FloatField(null=True, blank=True)
    pixscale: models.FloatField[float | None, float | None] = models.FloatField(
        null=True, blank=True
    )
    orientation: models.FloatField[float | None, float | None] = models.FloatField(
        null=True, blank=True
    )
    parity: models.FloatField[float | None, float | None] = models.FloatField(null=True, blank=True)
    width_arcsec: models.FloatField[float | None, float | None] = models.FloatField(
        null=True, blank=True
    )
    height_arcsec: models.FloatField[float | None, float | None] = models.FloatField(
        null=True, blank=True
    )
    #: HEALPix pixel of the centre and class of the field radius (see
    #: :mod:`skysolve.submissions.sky`), set with ra/dec by :meth:`save` and
    #: by every update that records a calibration (``sky_columns``).
    sky_pixel: models.BigIntegerField[int | None, int | None] = models.BigIntegerField(
        null=True, blank=True
    )
    sky_size: models.SmallIntegerField[int | None, int | None] = models.SmallIntegerField(
        null=True, blank=True
    )

    class Meta:
        indexes = [
            models.Index(fields=["status", "owner_key", "queued_at"]),
            models.Index(fields=["status", "lease_expires"]),
            models.Index(fields=["ra", "dec"]),
            # The status page's place in the queue (jobs queued earlier).
            models.Index(fields=["status", "queued_at"], name="job_status_queued"),
            # The gallery: solved jobs, newest first.
            models.Index(fields=["status", "finished_at", "id"], name="job_status_finished"),
            # A submitter's jobs, newest first (user pages, myjobs).
            models.Index(fields=["owner_key", "queued_at", "id"], name="job_owner_queued"),
            # Learned hints: an owner's solves of the last hours.
            models.Index(
                fields=["owner_key", "status", "finished_at"], name="job_owner_status_finished"
            ),
            # Position search (HEALPix ranges within a class of field sizes).
            models.Index(
                fields=["sky_size", "sky_pixel"],
                name="job_sky",
                condition=models.Q(sky_pixel__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"job {self.id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The sky columns follow the centre whenever a save writes it.
        fields = kwargs.get("update_fields")
        if fields is None or {"ra", "dec", "radius"} & set(fields):
            columns = sky_columns(self.ra, self.dec, self.radius)
            self.sky_pixel, self.sky_size = columns["sky_pixel"], columns["sky_size"]
            if fields is not None:
                kwargs["update_fields"] = {*fields, "sky_pixel", "sky_size"}
        super().save(*args, **kwargs)

    @property
    def submission(self) -> Submission:
        return self.user_image.submission

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def has_calibration(self) -> bool:
        return self.status == self.SUCCESS and self.ra is not None

    def nova_status(self) -> str:
        """The status nova clients understand: processing, solving, success, failure."""
        if self.status == self.SUCCESS:
            return "success"
        if self.status in (self.FAILURE, self.CANCELLED):
            return "failure"
        if self.status == self.RUNNING and self.stage in ("solving", "annotating", "finished"):
            return "solving"
        return "processing"

    def calibration_dict(self) -> dict[str, float] | None:
        if not self.has_calibration:
            return None
        return {name: float(getattr(self, name)) for name in CALIBRATION_FIELDS}

    def nova_calibration(self) -> dict[str, float] | None:
        """:meth:`calibration_dict` with ``orientation`` as nova's API reports it."""
        data = self.calibration_dict()
        if data is not None:
            image_format = (self.result or {}).get("image_format")
            data["orientation"] = nova_orientation(data["orientation"], image_format)
        return data

    def quality(self) -> dict[str, Any] | None:
        """How good the calibration is (:mod:`skysolve.engine.fitting.quality`), or None."""
        if not self.has_calibration or not self.result:
            return None
        found = self.result.get("quality")
        return dict(found) if isinstance(found, dict) else None

    def objects_in_field(self) -> list[str]:
        if not self.result:
            return []
        return [str(name) for name in self.result.get("objects_in_field", [])]

    def annotations(self) -> list[dict[str, Any]]:
        if not self.result:
            return []
        return list(self.result.get("annotations", []))


def nova_time(value: datetime | None) -> str:
    """A timestamp as nova prints it: naive UTC ``str(datetime)``, or "None"."""
    if value is None:
        return "None"
    if timezone.is_aware(value):
        value = value.astimezone(UTC).replace(tzinfo=None)
    return str(value)
