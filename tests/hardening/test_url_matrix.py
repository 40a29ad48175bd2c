"""Every URL pattern of the site and the API, as owner, other user, staff and anonymous.

The patterns are enumerated from Django's resolver, and each must have a rule
here: a URL added without saying who may see it fails
``test_it_has_a_rule_for_every_url``.  The rules run in strict mode
(SKYSOLVE_PRIVATE_RESULTS=strict) for a public and a private submission;
tests/front/test_privacy.py and tests/api/test_privacy.py cover open mode and
the listings in more detail.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from PIL import Image as PILImage

from skysolve.accounts.models import ApiKey, ApiSession
from skysolve.api.files import RESULT_FILES
from skysolve.community.models import Album, Comment, Flag, Tag, TaggedUserImage
from skysolve.submissions.models import Job
from skysolve.submissions.services import create_api_key, upload_path
from tests.front.helpers import solve, submit

pytestmark = pytest.mark.django_db

SECRET = "secret-field.jpg"
OBJECT = "Part of the constellation Ursa Major (UMa)"
ROLES = ("owner", "other", "staff", "anonymous")


def url_patterns() -> Iterator[tuple[str, str]]:
    """(key, route) of every pattern; the admin site counts as one."""

    def walk(resolver: URLResolver, prefix: str, namespace: str) -> Iterator[tuple[str, str]]:
        for pattern in resolver.url_patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                if pattern.namespace == "admin":
                    yield "admin", route
                else:
                    yield from walk(pattern, route, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern):
                name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
                yield name or route, route

    yield from walk(get_resolver(), "", "")


@dataclass
class World:
    public: bool
    job: Job
    clients: dict[str, Client]
    sessions: dict[str, str]
    users: dict[str, User | None]

    @property
    def readable_by(self) -> set[str]:
        return set(ROLES) if self.public else {"owner", "staff"}

    def url(self, route: str) -> str:
        """A concrete URL for a route, with this world's ids."""
        submission = self.job.user_image.submission
        values = {
            "job_id": self.job.id,
            "submission_id": submission.id,
            "image_id": self.job.user_image.id,
            "album_id": Album.objects.get(title="Walk").id,
            "username": "alice",
            "key_id": ApiKey.objects.filter(user__username="alice").first().pk,  # type: ignore[union-attr]
            "tag_id": Tag.objects.get(text=OBJECT).pk,
            "tagged_id": TaggedUserImage.objects.filter(machine=False).order_by("id")[0].pk,
            "comment_id": Comment.objects.filter(album__isnull=True).order_by("created")[0].id,
        }
        path = route.removeprefix("^").removesuffix("$").removesuffix("/?")
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(values[m.group(1)]), path)
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), path)
        return "/" + path.replace("\\.", ".")


def body_of(response: Any) -> str:
    raw = b"".join(response) if response.streaming else response.content
    return str(raw.decode("utf-8", "replace"))


def api(response: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(body_of(response))
    return data


Rule = Callable[[World, str, str], None]


def page(ok: int = 200) -> Rule:
    """Everyone sees it (the private image never appears unless it is theirs)."""

    def rule(world: World, role: str, url: str) -> None:
        response = world.clients[role].get(url)
        allowed = (ok, 302) if role != "anonymous" else (ok,)
        assert response.status_code in allowed, (url, role, response.status_code)
        if role in ("other", "anonymous") and not world.public:
            assert SECRET not in body_of(response), (url, role)

    return rule


def signed_in_page(mine: bool) -> Rule:
    def rule(world: World, role: str, url: str) -> None:
        response = world.clients[role].get(url)
        if role == "anonymous":
            assert response.status_code == 302 and "/accounts/login" in response["Location"]
            return
        assert response.status_code == 200, (url, role)
        if mine:
            assert (SECRET in body_of(response)) == (role == "owner"), (url, role)

    return rule


def readable(ok: tuple[int, ...] = (200,)) -> Rule:
    """A page or API answer of one submission/job/image: its readers, else 404."""

    def rule(world: World, role: str, url: str) -> None:
        session = world.sessions.get(role)
        response = world.clients[role].get(url + (f"?session={session}" if session else ""))
        body = body_of(response)  # read to the end, which closes a served file
        if role in world.readable_by:
            assert response.status_code in ok, (url, role, response.status_code)
        else:
            assert response.status_code == 404, (url, role, response.status_code)
            assert SECRET not in body

    return rule


def result_file(world: World, role: str, url: str) -> None:
    response = world.clients[role].get(url)
    body_of(response)  # read to the end, which closes the file
    if role in world.readable_by:
        # 404 only for a file this (fake) solve did not make, and saying so.
        assert response.status_code == 200 or api(response)["errormessage"].startswith("no "), url
        assert (
            response.status_code == 200
            or f"for job {world.job.id}" in api(response)["errormessage"]
        )
    else:
        assert response.status_code == 404, (url, role)
        assert api(response)["errormessage"] == f"no job with id {world.job.id}"


def post_json(world: World, role: str, url: str, **args: Any) -> Any:
    session = world.sessions.get(role)
    payload = {**args, **({"session": session} if session else {})}
    return world.clients[role].post(url, {"request-json": json.dumps(payload)})


def needs_session(role: str, answer: dict[str, Any]) -> bool:
    if role == "anonymous":
        assert answer == {"status": "error", "errormessage": 'no "session" in JSON.'}
        return True
    return False


def cancel(world: World, role: str, url: str) -> None:
    response = post_json(world, role, url)
    if needs_session(role, api(response)):
        return
    if role in ("owner", "staff"):
        assert "already finished" in api(response)["errormessage"]
    elif role in world.readable_by:
        assert response.status_code == 403
    else:
        assert response.status_code == 404


def myjobs(world: World, role: str, url: str) -> None:
    answer = api(post_json(world, role, url))
    if not needs_session(role, answer):
        assert (world.job.id in answer["jobs"]) == (role == "owner"), role


def submission_images(world: World, role: str, url: str) -> None:
    response = post_json(world, role, url, subid=world.job.user_image.submission.id)
    if needs_session(role, api(response)):
        return
    if role in world.readable_by:
        assert api(response)["image_ids"] == [world.job.user_image.id]
    else:
        assert response.status_code == 404


def jobs_by_tag(world: World, role: str, url: str) -> None:
    found = api(world.clients[role].get(url, {"query": "Ursa Major"}))["job_ids"]
    assert (world.job.id in found) == world.public, role


def api_login(world: World, role: str, url: str) -> None:
    user = world.users[role]
    key = "" if user is None else ApiKey.objects.filter(user=user).first().key  # type: ignore[union-attr]
    answer = api(world.clients[role].post(url, {"request-json": json.dumps({"apikey": key})}))
    assert answer["status"] == ("error" if user is None else "success"), role


def submits(world: World, role: str, url: str) -> None:
    answer = api(post_json(world, role, url, x=[1.0, 2.0], y=[3.0, 4.0]))
    if not needs_session(role, answer):
        # Both take x/y in request-json (/api/upload with no file part, as nova does).
        assert answer["status"] == "success", (url, role, answer)


def unknown(world: World, role: str, url: str) -> None:
    response = world.clients[role].get(url)
    assert response.status_code == 404 and api(response)["status"] == "error"


def post_only(world: World, role: str, url: str) -> None:
    response = world.clients[role].get(url)
    # Anonymous: 405, or 302 to sign in where the view needs a user first.
    assert response.status_code in ((302, 405) if role == "anonymous" else (405,)), (url, role)


def profile(world: World, role: str, url: str) -> None:
    signed_in_page(mine=False)(world, role, url)
    alice_key = ApiKey.objects.filter(user__username="alice").first()
    assert alice_key is not None
    if role != "anonymous":
        shown = alice_key.key in body_of(world.clients[role].get(url))
        assert shown == (role == "owner"), role


def regenerate(world: World, role: str, url: str) -> None:
    post_only(world, role, url)
    key = ApiKey.objects.filter(user__username="alice").first()
    assert key is not None
    before = key.key
    response = world.clients[role].post(f"/accounts/apikey/{key.pk}/regenerate")
    assert response.status_code == 302
    changed = ApiKey.objects.get(pk=key.pk).key != before
    assert changed == (role == "owner"), role
    if changed:  # give alice a session again for the rules that follow
        world.sessions["owner"] = ApiSession.start(key.user, key).key


def admin(world: World, role: str, url: str) -> None:
    response = world.clients[role].get("/admin/submissions/job/")
    if role == "staff":
        assert response.status_code in (200, 403), role  # staff without permissions: 403
    else:
        assert response.status_code == 302 and "/admin/login" in response["Location"], role


def owner_page(world: World, role: str, url: str) -> None:
    """A page only the owner uses (editing): everyone else is told nothing."""
    response = world.clients[role].get(url)
    if role == "anonymous":
        assert response.status_code == 302 and "/accounts/login" in response["Location"]
    else:
        assert response.status_code == (200 if role == "owner" else 404), (url, role)


def staff_page(world: World, role: str, url: str) -> None:
    response = world.clients[role].get(url)
    if role == "anonymous":
        assert response.status_code == 302 and "/accounts/login" in response["Location"]
        return
    assert response.status_code == (200 if role == "staff" else 404), (url, role)
    if role == "staff":  # the staff's view lists private flagged images too
        assert SECRET in body_of(response)


def signed_in_post(data: dict[str, Any]) -> Rule:
    """A form post about the image: its signed-in readers may, others get 404."""

    def rule(world: World, role: str, url: str) -> None:
        post_only(world, role, url)
        response = world.clients[role].post(url, {**data, "next": "/"})
        if role == "anonymous":
            assert response.status_code == 302 and "/accounts/login" in response["Location"]
        elif role in world.readable_by:
            assert response.status_code == 302, (url, role, response.status_code)
        else:
            assert response.status_code == 404, (url, role, response.status_code)
            assert SECRET not in body_of(response)

    return rule


def user_albums(world: World, role: str, url: str) -> None:
    response = world.clients[role].get(url)
    assert response.status_code == 200
    shown = "Walk" in body_of(response)
    assert shown == (world.public or role in ("owner", "staff")), (url, role)


def staff_admin_page(world: World, role: str, url: str) -> None:
    """Staff only; anyone else is sent to the admin sign-in."""
    response = world.clients[role].get(url)
    if role == "staff":
        assert response.status_code == 200, role
        assert SECRET not in body_of(response)
    else:
        assert response.status_code == 302 and "/admin/login" in response["Location"], role


def health(world: World, role: str, url: str) -> None:
    response = world.clients[role].get(url)
    assert response.status_code in (200, 503)
    assert SECRET not in body_of(response)


JOB_API = readable((200,))
RULES: dict[str, Rule] = {
    "admin": admin,
    "health": health, "health/": health, "health-workers": health, "health/workers/": health,
    "metrics": health, "metrics/": health,
    "api-login": api_login, "api-upload": submits, "api-url-upload": submits,
    "api-submission": readable(), "api-job": JOB_API, "api-calibration": JOB_API,
    "api-info": JOB_API, "api-tags": JOB_API, "api-machine-tags": JOB_API,
    "api-objects": JOB_API, "api-annotations": JOB_API, "api-cancel": cancel,
    "api-myjobs": myjobs, "api-jobs-by-tag": jobs_by_tag,
    "api-submission-images": submission_images, "api-openapi": page(),
    "api-unknown": unknown, "api-unknown-file": unknown,
    **{f"file-{kind.replace('_', '-')}": result_file for kind in RESULT_FILES},
    "front:home": page(), "front:upload": signed_in_page(mine=False),
    "front:status": readable(), "front:status_json": readable(), "front:results": readable(),
    "front:user_image": readable((302,)), "front:gallery": page(), "front:search": page(),
    "front:tags": page(), "front:albums": page(), "front:album": readable(), "front:user": page(),
    "front:my_images": signed_in_page(mine=True), "front:my_submissions": signed_in_page(mine=True),
    "front:original": readable(), "front:display": readable(), "front:thumbnail": readable(),
    "front:edit_image": owner_page, "front:hide_image": post_only,
    "front:unhide_image": post_only, "front:remove_tag": post_only,
    "front:delete_comment": post_only, "front:delete_album": post_only,
    "front:add_tag": signed_in_post({"text": "seen"}),
    "front:comment_image": signed_in_post({"text": "nice"}),
    "front:set_flags": signed_in_post({"flags": ["nice"]}),
    "front:comment_album": signed_in_post({"text": "nice album"}),
    "front:flagged": staff_page, "front:tag": readable(),
    "front:new_album": signed_in_page(mine=False),
    "front:edit_album": owner_page, "front:user_albums": user_albums,
    "front:indexes": staff_admin_page,
    "accounts:signup": page(), "accounts:login": page(), "accounts:logout": post_only,
    "accounts:profile": profile, "accounts:regenerate_key": regenerate,
}  # fmt: skip


#: Patterns that are not one URL: the admin site and the API's catch-alls.
FIXED_URLS = {
    "admin": "/admin/",
    "api-unknown": "/api/no/such/thing",
    "api-unknown-file": "/wcs_file/not-a-number",
}


def test_it_has_a_rule_for_every_url() -> None:
    keys = [key for key, _ in url_patterns()]
    missing = sorted(set(keys) - set(RULES))
    assert not missing, f"URL patterns without a privacy rule in {__file__}: {missing}"


@pytest.fixture
def world(request: pytest.FixtureRequest, settings: Any) -> World:
    settings.SKYSOLVE_PRIVATE_RESULTS = "strict"
    public = bool(request.param)
    users: dict[str, User | None] = {"anonymous": None}
    sessions: dict[str, str] = {}
    for role, name in (("owner", "alice"), ("other", "bob"), ("staff", "charlie")):
        key = create_api_key(name)
        key.user.is_staff = role == "staff"
        key.user.save()
        users[role] = key.user
        sessions[role] = ApiSession.start(key.user, key).key
    owner = users["owner"]
    job = solve(submit(owner, public=public, filename=SECRET, album="Walk"))
    Album.objects.filter(title="Walk").update(publicly_visible="y" if public else "n")
    # A real picture, so the renderings of the original exist for its readers.
    stored = upload_path(job.user_image.submission)
    assert stored is not None
    PILImage.new("RGB", (40, 30), "navy").save(stored, "PNG")
    image = job.user_image
    tag = TaggedUserImage.objects.create(
        user_image=image, tag=Tag.objects.create(text="by alice"), added_by=owner
    )
    Comment.objects.create(author=owner, user_image=image, text="first light")
    Comment.objects.create(author=owner, album=Album.objects.get(title="Walk"), text="a walk")
    Flag.objects.create(user_image=image, user=owner, kind=Flag.ABUSE)
    assert tag.pk
    clients = {}
    for role, user in users.items():
        clients[role] = Client()
        if user is not None:
            clients[role].force_login(user)
    return World(public, job, clients, sessions, users)


@pytest.mark.parametrize("world", [True, False], ids=["public", "private"], indirect=True)
def test_it_shows_each_url_to_whom_it_may(world: World) -> None:
    for key, route in url_patterns():
        url = FIXED_URLS.get(key) or world.url(route)
        for role in ("other", "staff", "anonymous", "owner"):
            RULES[key](world, role, url)
