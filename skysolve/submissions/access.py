"""Who may read what: the viewer, ownership and privacy of submissions and jobs.

A private submission's pages are its owner's and the staff's; the API's
status and result URLs follow nova (whoever holds an id) unless
SKYSOLVE_PRIVATE_RESULTS=strict.  The lookups raise
:class:`~skysolve.errors.NotFound` for what the viewer may not see.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User

from skysolve.accounts.models import ApiSession
from skysolve.errors import NotFound
from skysolve.submissions.models import Job, Submission


@dataclass(frozen=True)
class Viewer:
    """Who is asking: a user, an anonymous API session, or nobody."""

    user: User | None = None
    session_key: str = ""

    @property
    def is_staff(self) -> bool:
        return self.user is not None and self.user.is_staff

    @property
    def owner_key(self) -> str:
        if self.user is not None:
            return f"user:{self.user.pk}"
        return f"anon:{self.session_key}"

    @classmethod
    def of_session(cls, session: ApiSession) -> Viewer:
        return cls(user=session.user, session_key=session.key)


def owns(viewer: Viewer, submission: Submission) -> bool:
    return owns_ids(viewer, submission.user_id, submission.anonymous_session)  # type: ignore[attr-defined]


def owns_ids(viewer: Viewer, user_id: int | None, anonymous_session: str) -> bool:
    if user_id is not None:
        return viewer.user is not None and viewer.user.pk == user_id
    return bool(viewer.session_key) and viewer.session_key == anonymous_session


def may_read(viewer: Viewer, submission: Submission, *, public: bool, pages: bool = False) -> bool:
    """Whether ``viewer`` may read a submission (or one of its images, ``public`` or not).

    With ``pages`` (the web site's pages of it, the logs they show, and the
    original upload) a private one is its owner's and the staff's alone.  Without it (the
    API's job status and calibration, the result files nova serves by job id)
    nova lets whoever holds an id read it, which clients without a session
    (KStars) need; SKYSOLVE_PRIVATE_RESULTS=strict keeps those private too.
    """
    return may_read_ids(
        viewer,
        submission.user_id,  # type: ignore[attr-defined]
        submission.anonymous_session,
        public=public,
        pages=pages,
    )


def may_read_ids(
    viewer: Viewer,
    user_id: int | None,
    anonymous_session: str,
    *,
    public: bool,
    pages: bool = False,
) -> bool:
    if public or (not pages and settings.SKYSOLVE_PRIVATE_RESULTS != "strict"):
        return True
    return viewer.is_staff or owns_ids(viewer, user_id, anonymous_session)


#: Columns no reader of a submission's or job's status needs: the input star
#: lists (tens of KB of JSON each, decoded on every poll otherwise), the request
#: as sent and the engine log.  Reading one of them later costs its own query.
INPUT_COLUMNS = ("star_list", "request_json")


def get_submission(submission_id: int, viewer: Viewer, *, pages: bool = False) -> Submission:
    """The submission if ``viewer`` may read it (``pages``: as :func:`may_read`), else NotFound."""
    submission = Submission.objects.defer(*INPUT_COLUMNS).filter(pk=valid_id(submission_id)).first()
    public = submission is not None and submission.is_public
    if submission is None or not may_read(viewer, submission, public=public, pages=pages):
        raise NotFound(
            f"no submission with id {submission_id}", kind="submission", object_id=submission_id
        )
    return submission


def get_job(job_id: int, viewer: Viewer, *, pages: bool = False) -> Job:
    """The job if ``viewer`` may read it (``pages``: as :func:`may_read`), else NotFound."""
    unread = ["log", "user_image__star_list"]
    unread += [f"user_image__submission__{name}" for name in INPUT_COLUMNS]
    job = (
        Job.objects.select_related("user_image__submission")
        .defer(*unread)
        .filter(pk=valid_id(job_id))
        .first()
    )
    public = job is not None and job.user_image.is_public
    if job is None or not may_read(viewer, job.submission, public=public, pages=pages):
        raise NotFound(f"no job with id {job_id}", kind="job", object_id=job_id)
    return job


def valid_id(value: int) -> int:
    # Ids beyond a 32-bit integer would make PostgreSQL raise instead of find nothing.
    return value if 0 < value < 2**31 else 0
