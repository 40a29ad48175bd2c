"""Views of what people do with images: tags, comments, flags, edits and albums.

Each parses and authorises, then calls :mod:`skysolve.community`.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from skysolve.community import access, comments, edits, flags
from skysolve.community import albums as community_albums
from skysolve.community import tags as community_tags
from skysolve.community.models import Album, Flag
from skysolve.front import listings
from skysolve.front.forms import AlbumForm, ImageEditForm
from skysolve.front.viewhelpers import (
    SeekPage,
    page_cursor,
    paginate,
    query_without_page,
    viewer_of,
)
from skysolve.submissions import services as submissions

# -- tags, comments, flags ---------------------------------------------------------


def _back_to_image(image_id: int, *, section: str = "") -> HttpResponse:
    """To the image's results page, at ``section`` (an element id) when given."""
    response = redirect("front:user_image", image_id=image_id)
    if section:
        # Browsers keep the fragment through the redirect to /results/N.
        response["Location"] += f"#{section}"
    return response


def _acting(request: HttpRequest, action: Callable[[], HttpResponse]) -> HttpResponse:
    """Run a change; NotFound becomes 404, a refused change a message (403 kept)."""
    try:
        return action()
    except submissions.NotFound:
        raise Http404("not found") from None
    except submissions.ServiceError as exc:
        if exc.status == 403:
            return HttpResponseForbidden(exc.message)
        messages.error(request, exc.message)
        return _bounce(request)


def _bounce(request: HttpRequest) -> HttpResponse:
    """Back to the page the form was on, only if it is a page of this site."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("front:home")


@login_required
@require_POST
def add_tag(request: HttpRequest, image_id: int) -> HttpResponse:
    viewer = viewer_of(request)

    def act() -> HttpResponse:
        community_tags.add_tag(image_id, viewer, request.POST.get("text", ""))
        return _back_to_image(image_id)

    return _acting(request, act)


@login_required
@require_POST
def remove_tag(request: HttpRequest, tagged_id: int) -> HttpResponse:
    viewer = viewer_of(request)

    def act() -> HttpResponse:
        image = community_tags.remove_tag(tagged_id, viewer)
        return _back_to_image(image.id)

    return _acting(request, act)


@login_required
@require_POST
def comment_image(request: HttpRequest, image_id: int) -> HttpResponse:
    viewer = viewer_of(request)

    def act() -> HttpResponse:
        comments.comment_on_image(image_id, viewer, request.POST.get("text", ""))
        return _back_to_image(image_id)

    return _acting(request, act)


@login_required
@require_POST
def comment_album(request: HttpRequest, album_id: int) -> HttpResponse:
    viewer = viewer_of(request)

    def act() -> HttpResponse:
        found = access.get_album(album_id, viewer)
        comments.comment_on_album(found, viewer, request.POST.get("text", ""))
        return redirect("front:album", album_id=found.id)

    return _acting(request, act)


@login_required
@require_POST
def delete_comment(request: HttpRequest, comment_id: int) -> HttpResponse:
    viewer = viewer_of(request)

    def act() -> HttpResponse:
        comment = comments.delete_comment(comment_id, viewer)
        if comment.user_image_id is not None:  # type: ignore[attr-defined]
            return _back_to_image(comment.user_image_id)  # type: ignore[attr-defined]
        return redirect("front:album", album_id=comment.album_id)  # type: ignore[attr-defined]

    return _acting(request, act)


@login_required
@require_POST
def set_flags(request: HttpRequest, image_id: int) -> HttpResponse:
    viewer = viewer_of(request)

    def act() -> HttpResponse:
        chosen = request.POST.getlist("flags")
        flags.set_flags(image_id, viewer, chosen)
        labels = [label for kind, label in Flag.KIND_CHOICES if kind in chosen]
        said = f"Flags saved: {', '.join(labels)}." if labels else "Flags saved: none set."
        messages.success(request, said)
        return _back_to_image(image_id, section="flags")

    return _acting(request, act)


@login_required
@require_GET
def flagged(request: HttpRequest) -> HttpResponse:
    """The staff's list of flagged images; to anyone else it does not exist."""
    if not viewer_of(request).is_staff:
        raise Http404("no such page")
    kind = request.GET.get("kind", "")
    kind = kind if kind in flags.FLAG_KINDS else ""
    ctx = {
        "page": paginate(request, flags.flagged_images(kind)),
        "kinds": Flag.KIND_CHOICES,
        "kind": kind,
        "query_string": query_without_page(request),
    }
    return render(request, "front/flagged.html", ctx)


@require_GET
def tags(request: HttpRequest) -> HttpResponse:
    """Tags of public images with their counts: substring or exact search, paged."""
    query = " ".join(request.GET.get("q", "").split())[: access.TAG_MAX]
    exact = request.GET.get("exact") == "1"
    order = "name" if request.GET.get("order") == "name" else "count"
    found = community_tags.tag_counts(query, exact=exact, order=order)
    ctx = {
        "page": Paginator(found, 100).get_page(request.GET.get("page")),
        "q": query,
        "exact": exact,
        "order": order,
        "query_string": query_without_page(request),
    }
    return render(request, "front/tags.html", ctx)


@require_GET
def tag(request: HttpRequest, tag_id: int) -> HttpResponse:
    viewer = viewer_of(request)
    try:
        found = community_tags.get_tag(tag_id, viewer)
    except submissions.NotFound:
        raise Http404("no such tag") from None
    images, older = community_tags.tag_images(found, viewer, before=page_cursor(request).before)
    page = SeekPage(request, listings.Listing(listings.image_cards(images), older))
    # The kept count of public images (the viewer's own private ones are not in it).
    ctx = {"page": page, "tag": found, "count": found.public_count}
    return render(request, "front/tag.html", ctx)


# -- editing an image --------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def edit_image(request: HttpRequest, image_id: int) -> HttpResponse:
    viewer = viewer_of(request)
    try:
        image = access.get_own_image(image_id, viewer)
    except submissions.NotFound:
        raise Http404("no such image") from None
    albums = Album.objects.filter(owner=request.user).order_by("title")
    if request.method == "POST":
        form = ImageEditForm(request.POST, albums=albums)
        if form.is_valid():
            try:
                edits.edit_image(image_id, viewer, form.edit())
            except submissions.ServiceError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, "Image saved.")
                return _back_to_image(image_id)
    else:
        form = ImageEditForm(
            albums=albums,
            initial={
                "description": image.description,
                "publicly_visible": image.publicly_visible,
                "allow_commercial_use": image.submission.allow_commercial_use,
                "allow_modifications": image.submission.allow_modifications,
                "albums": list(albums.filter(user_images=image).values_list("id", flat=True)),
            },
        )
    return render(request, "front/image_edit.html", {"form": form, "image": image})


@login_required
@require_POST
def hide_image(request: HttpRequest, image_id: int) -> HttpResponse:
    viewer = viewer_of(request)

    def act() -> HttpResponse:
        image = edits.set_visibility(image_id, viewer, public=False)
        messages.success(request, "The image is private now: only you (and staff) see its pages.")
        return _back_to_image(image.id)

    return _acting(request, act)


@login_required
@require_POST
def unhide_image(request: HttpRequest, image_id: int) -> HttpResponse:
    viewer = viewer_of(request)

    def act() -> HttpResponse:
        image = edits.set_visibility(image_id, viewer, public=True)
        messages.success(request, "The image is public now: the gallery and searches show it.")
        return _back_to_image(image.id)

    return _acting(request, act)


# -- albums ------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def new_album(request: HttpRequest) -> HttpResponse:
    form = AlbumForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = community_albums.create_album(viewer_of(request), **form.cleaned_data)
        except submissions.ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            return redirect("front:album", album_id=created.id)
    return render(request, "front/album_form.html", {"form": form, "album": None})


@login_required
@require_http_methods(["GET", "POST"])
def edit_album(request: HttpRequest, album_id: int) -> HttpResponse:
    viewer = viewer_of(request)
    try:
        found = community_albums.get_own_album(album_id, viewer)
    except submissions.NotFound:
        raise Http404("no such album") from None
    if request.method == "POST":
        form = AlbumForm(request.POST)
        if form.is_valid():
            try:
                community_albums.edit_album(album_id, viewer, **form.cleaned_data)
            except submissions.ServiceError as exc:
                form.add_error(None, exc.message)
            else:
                return redirect("front:album", album_id=album_id)
    else:
        form = AlbumForm(
            initial={
                "title": found.title,
                "description": found.description,
                "publicly_visible": found.publicly_visible,
            }
        )
    return render(request, "front/album_form.html", {"form": form, "album": found})


@login_required
@require_POST
def delete_album(request: HttpRequest, album_id: int) -> HttpResponse:
    try:
        community_albums.delete_album(album_id, viewer_of(request))
    except submissions.NotFound:
        raise Http404("no such album") from None
    messages.success(request, "Album deleted; its images are still in My images.")
    return redirect("front:user_albums", username=request.user.get_username())


@require_GET
def user_albums(request: HttpRequest, username: str) -> HttpResponse:
    owner = get_object_or_404(User, username=username)
    ctx = {"albums": community_albums.user_albums(owner, viewer_of(request)), "owner": owner}
    return render(request, "front/albums.html", ctx)
