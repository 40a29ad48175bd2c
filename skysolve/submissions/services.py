"""What the API, the web site and the command line do with submissions, sessions and jobs.

Functions take plain values, never a request, so every caller shares one
implementation of every rule.  This module gathers them under one name
(``services.submit_xy``, ``services.get_job``); each lives in the module of
its job:

- :mod:`~skysolve.submissions.access`: the viewer, who owns and who may read
  a submission or job, the lookups that raise ``NotFound``;
- :mod:`~skysolve.submissions.sessions`: API keys and login sessions;
- :mod:`~skysolve.submissions.submitting`: options, uploads, URLs and star
  lists becoming a submission with its images and queued jobs;
- :mod:`~skysolve.submissions.status`: the one-query readers behind the status URLs;
- :mod:`~skysolve.submissions.listings`: lists of job ids (a viewer's, a tag's);
- :mod:`~skysolve.submissions.transitions`: every change of a job's state
  (cancel, retry, the worker's steps).

The errors they raise (``ServiceError``, ``NotFound``) live in :mod:`skysolve.errors`.
"""

from __future__ import annotations

from skysolve.errors import NotFound, ServiceError
from skysolve.submissions.access import (
    INPUT_COLUMNS,
    Viewer,
    get_job,
    get_submission,
    may_read,
    may_read_ids,
    owns,
    owns_ids,
    valid_id,
)
from skysolve.submissions.listings import (
    jobs_of,
    jobs_of_json,
    public_jobs_by_tag,
    public_jobs_by_tag_json,
    submission_image_ids,
)
from skysolve.submissions.sessions import (
    create_api_key,
    find_session,
    login,
    session_display_name,
)
from skysolve.submissions.status import (
    JOB_CALIBRATION,
    JOB_INFO,
    JOB_STATUS,
    SubmissionStatus,
    brightest,
    job_of_values,
    nova_calibration,
    read_job,
    submission_status,
    tag_texts,
)
from skysolve.submissions.submitting import (
    SAFE_SUFFIXES,
    SubmissionOptions,
    parse_options,
    store_upload,
    submit_upload,
    submit_upload_file,
    submit_url,
    submit_xy,
    upload_path,
)
from skysolve.submissions.transitions import (
    add_machine_tags,
    cancel_job,
    note_poll,
    request_cancel,
)
from skysolve.submissions.transitions import retry as retry_job

__all__ = [
    "INPUT_COLUMNS",
    "JOB_CALIBRATION",
    "JOB_INFO",
    "JOB_STATUS",
    "SAFE_SUFFIXES",
    "NotFound",
    "ServiceError",
    "SubmissionOptions",
    "SubmissionStatus",
    "Viewer",
    "add_machine_tags",
    "brightest",
    "cancel_job",
    "create_api_key",
    "find_session",
    "get_job",
    "get_submission",
    "job_of_values",
    "jobs_of",
    "jobs_of_json",
    "login",
    "may_read",
    "may_read_ids",
    "note_poll",
    "nova_calibration",
    "owns",
    "owns_ids",
    "parse_options",
    "public_jobs_by_tag",
    "public_jobs_by_tag_json",
    "read_job",
    "request_cancel",
    "retry_job",
    "session_display_name",
    "store_upload",
    "submission_image_ids",
    "submission_status",
    "submit_upload",
    "submit_upload_file",
    "submit_url",
    "submit_xy",
    "tag_texts",
    "upload_path",
    "valid_id",
]
