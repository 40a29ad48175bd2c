"""What every view of the site needs: who is asking, what they may read, which page."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse

from skysolve.front import listings
from skysolve.submissions import services as submissions

PAGE_SIZE = listings.PAGE_SIZE


def viewer_of(request: HttpRequest) -> submissions.Viewer:
    user = request.user if request.user.is_authenticated else None
    assert user is None or isinstance(user, User)
    return submissions.Viewer(user=user)


def readable_job(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Resolve ``job_id`` to a Job whose pages the viewer may see, else 404 (never
    403: a private job's existence is not revealed)."""

    @wraps(view)
    def wrapper(request: HttpRequest, job_id: int, **kwargs: Any) -> HttpResponse:
        try:
            job = submissions.get_job(job_id, viewer_of(request), pages=True)
        except submissions.NotFound:
            raise Http404("no such job") from None
        return view(request, job, **kwargs)

    return wrapper


def readable_submission(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, submission_id: int, **kwargs: Any) -> HttpResponse:
        try:
            submission = submissions.get_submission(submission_id, viewer_of(request), pages=True)
        except submissions.NotFound:
            raise Http404("no such submission") from None
        return view(request, submission, **kwargs)

    return wrapper


def query_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def paginate(request: HttpRequest, items: list[Any]) -> Any:
    return Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))


def page_cursor(request: HttpRequest) -> listings.Cursor:
    """Where a listing's page starts: ``before`` (the last row of the page before) or a
    page number; anything else is the first page."""
    before = request.GET.get("before", "")
    number = request.GET.get("page", "")
    return listings.Cursor(
        before=int(before) if before.isdigit() and 0 < int(before) < 2**31 else None,
        number=max(1, min(int(number), 10**6)) if number.isdigit() else 1,
    )


class SeekPage:
    """A page of a seek-paged listing, for the templates' page links.

    It has no page count (nothing is counted): "newest" goes back to the
    first page and "older" follows ``before``.
    """

    def __init__(self, request: HttpRequest, listing: listings.Listing) -> None:
        cursor = page_cursor(request)
        self.object_list = listing.items
        self.number = cursor.number
        params = request.GET.copy()
        for name in ("page", "before"):
            params.pop(name, None)
        self.first_query = params.urlencode()
        self.older_query = ""
        if listing.older is not None:
            params["before"] = str(listing.older)
            params["page"] = str(cursor.number + 1)
            self.older_query = params.urlencode()
        self.has_previous = cursor.number > 1 or cursor.before is not None
        self.has_next = bool(self.older_query)
        self.has_other_pages = self.has_previous or self.has_next
        #: A page number past the numbered pages (their links predate seek paging).
        self.beyond = cursor.beyond
