from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from skysolve.community.models import Album
from skysolve.front.listings import public_images
from skysolve.submissions import services
from skysolve.submissions.models import Submission, UserImage
from tests.front.helpers import make_user, solve, submit

pytestmark = pytest.mark.django_db


def edit_form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "description": "",
        "publicly_visible": "y",
        "allow_commercial_use": "d",
        "allow_modifications": "d",
    }
    data.update(overrides)
    return data


def test_it_lets_the_owner_edit_description_licence_visibility_and_albums(client: Client) -> None:
    alice = make_user("alice")
    job = solve(submit(alice))
    image = job.user_image
    messier = Album.objects.create(owner=alice, title="Messier")
    client.force_login(alice)
    assert client.get(f"/user_images/{image.id}/edit").status_code == 200
    response = client.post(
        f"/user_images/{image.id}/edit",
        edit_form(
            description="Taken <b>from</b> the garden",
            publicly_visible="n",
            allow_commercial_use="n",
            allow_modifications="sa",
            albums=[str(messier.id)],
        ),
    )
    assert response.status_code == 302
    image = UserImage.objects.get(pk=image.id)
    submission = Submission.objects.get(pk=image.submission.id)
    assert image.description == "Taken <b>from</b> the garden"
    assert image.publicly_visible == "n" and submission.publicly_visible == "n"
    assert (submission.allow_commercial_use, submission.allow_modifications) == ("n", "sa")
    assert list(messier.user_images.all()) == [image]
    body = client.get(f"/results/{job.id}").content.decode()
    assert "Taken &lt;b&gt;from&lt;/b&gt; the garden" in body
    assert "CC BY-NC-SA 4.0 (Attribution-NonCommercial-ShareAlike)" in body


def test_it_shows_other_people_nothing_to_edit(client: Client) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    image = solve(submit(alice)).user_image
    client.force_login(bob)
    assert client.get(f"/user_images/{image.id}/edit").status_code == 404
    response = client.post(f"/user_images/{image.id}/edit", edit_form(description="mine now"))
    assert response.status_code == 404
    assert client.post(f"/user_images/{image.id}/hide").status_code == 404
    assert UserImage.objects.get(pk=image.id).description == ""


def test_it_refuses_someone_elses_album(client: Client) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    image = solve(submit(alice)).user_image
    theirs = Album.objects.create(owner=bob, title="Bob's")
    client.force_login(alice)
    response = client.post(f"/user_images/{image.id}/edit", edit_form(albums=[str(theirs.id)]))
    assert response.status_code == 200  # the form again, with the error
    assert not theirs.user_images.exists()


def test_it_hides_and_unhides(client: Client) -> None:
    alice = make_user("alice")
    image = solve(submit(alice)).user_image
    client.force_login(alice)
    client.post(f"/user_images/{image.id}/hide")
    assert not public_images().filter(pk=image.id).exists()
    client.post(f"/user_images/{image.id}/unhide")
    assert public_images().filter(pk=image.id).exists()


def test_it_keeps_an_image_of_a_private_batch_private(client: Client, settings: Any) -> None:
    alice = make_user("alice")
    viewer = services.Viewer(user=alice)
    args = {"publicly_visible": "n", "x": [[1.0, 2.0], [3.0, 4.0]], "y": [[1.0, 2.0], [3.0, 4.0]]}
    submission = services.submit_xy(viewer, args)
    image = submission.user_images.order_by("id").first()
    assert image is not None
    client.force_login(alice)
    response = client.post(f"/user_images/{image.id}/unhide", {"next": "/my/images"}, follow=True)
    assert "private submission of several images" in response.content.decode()
    assert UserImage.objects.get(pk=image.id).publicly_visible == "n"


def test_it_leaves_a_hidden_image_of_a_public_batch_off_its_status_page(
    client: Client, settings: Any
) -> None:
    settings.SKYSOLVE_PRIVATE_RESULTS = "strict"
    alice = make_user("alice")
    args = {"x": [[1.0, 2.0], [3.0, 4.0]], "y": [[1.0, 2.0], [3.0, 4.0]]}
    submission = services.submit_xy(services.Viewer(user=alice), args)
    first, second = submission.user_images.order_by("created", "id")
    client.force_login(alice)
    client.post(f"/user_images/{second.id}/hide")
    hidden_job = second.jobs.get().id
    assert len(client.get(f"/status/{submission.id}/json").json()["jobs"]) == 2
    client.force_login(make_user("bob"))
    jobs = client.get(f"/status/{submission.id}/json").json()["jobs"]
    assert [job["id"] for job in jobs] == [first.jobs.get().id]
    assert f"Job {hidden_job}" not in client.get(f"/status/{submission.id}").content.decode()
