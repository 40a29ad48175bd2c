"""The job of a submission, for the tests that run in Django (one definition for all)."""

from __future__ import annotations

from skysolve.submissions.models import Job, Submission


def job_of(submission: Submission | int) -> Job:
    """The one job of ``submission`` (the object or its id)."""
    if isinstance(submission, Submission):
        return Job.objects.get(user_image__submission=submission)
    return Job.objects.get(user_image__submission_id=submission)
