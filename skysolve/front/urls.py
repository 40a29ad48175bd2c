from __future__ import annotations

from django.urls import path, re_path

from skysolve.front import views

app_name = "front"

urlpatterns = [
    path("", views.home, name="home"),
    path("upload", views.upload, name="upload"),
    path("status/<int:submission_id>", views.status, name="status"),
    path("status/<int:submission_id>/json", views.status_json, name="status_json"),
    path("results/<int:job_id>", views.results, name="results"),
    path("user_images/<int:image_id>", views.user_image, name="user_image"),
    path("gallery", views.gallery, name="gallery"),
    path("search", views.search, name="search"),
    path("tags", views.tags, name="tags"),
    path("albums", views.albums, name="albums"),
    path("albums/<int:album_id>", views.album, name="album"),
    re_path(r"^users/(?P<username>[\w.@+-]+)$", views.user_page, name="user"),
    path("my/images", views.my_images, name="my_images"),
    path("my/submissions", views.my_submissions, name="my_submissions"),
    path("staff/indexes", views.indexes, name="indexes"),
]
