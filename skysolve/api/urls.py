"""Every API URL, with and without a trailing slash, at the site root."""

from __future__ import annotations

from django.urls import URLPattern, re_path

from skysolve.api import files, openapi, views

JOB = r"(?P<job_id>[0-9]{1,12})"
SUB = r"(?P<submission_id>[0-9]{1,12})"

urlpatterns: list[URLPattern] = [
    re_path(r"^api/login/?$", views.login, name="api-login"),
    re_path(r"^api/upload/?$", views.upload, name="api-upload"),
    re_path(r"^api/url_upload/?$", views.url_upload, name="api-url-upload"),
    re_path(rf"^api/submissions/{SUB}/?$", views.submission_status, name="api-submission"),
    re_path(rf"^api/jobs/{JOB}/?$", views.job_status, name="api-job"),
    re_path(rf"^api/jobs/{JOB}/calibration/?$", views.calibration, name="api-calibration"),
    re_path(rf"^api/jobs/{JOB}/info/?$", views.info, name="api-info"),
    re_path(rf"^api/jobs/{JOB}/tags/?$", views.tags, name="api-tags"),
    re_path(rf"^api/jobs/{JOB}/machine_tags/?$", views.machine_tags, name="api-machine-tags"),
    re_path(rf"^api/jobs/{JOB}/objects_in_field/?$", views.objects_in_field, name="api-objects"),
    re_path(rf"^api/jobs/{JOB}/annotations/?$", views.annotation_list, name="api-annotations"),
    re_path(rf"^api/jobs/{JOB}/cancel/?$", views.cancel, name="api-cancel"),
    re_path(r"^api/myjobs/?$", views.myjobs, name="api-myjobs"),
    re_path(r"^api/jobs_by_tag/?$", views.jobs_by_tag, name="api-jobs-by-tag"),
    re_path(r"^api/submission_images/?$", views.submission_images, name="api-submission-images"),
    re_path(r"^api/openapi\.json$", openapi.openapi_json, name="api-openapi"),
]

for _kind in files.RESULT_FILES:
    urlpatterns.append(
        re_path(
            rf"^{_kind}/{JOB}/?$",
            files.result_file,
            {"kind": _kind},
            name=f"file-{_kind.replace('_', '-')}",
        )
    )

#: Last: every other URL under /api/ and a result-file URL whose id is not a
#: number answer 404 in the API's error shape, not the site's HTML page.
FALLBACK = "api-unknown"
_FILE_KINDS = "|".join(files.RESULT_FILES)
urlpatterns += [
    re_path(r"^api(?:/.*)?$", views.unknown, name=FALLBACK),
    re_path(rf"^(?:{_FILE_KINDS})(?:/.*)?$", views.unknown, name=FALLBACK + "-file"),
]
