from __future__ import annotations

from django.urls import path, re_path

from skysolve.front import community_views, upload_views, views

app_name = "front"

urlpatterns = [
    path("", upload_views.home, name="home"),
    path("upload", upload_views.upload, name="upload"),
    path("status/<int:submission_id>", upload_views.status, name="status"),
    path("status/<int:submission_id>/json", upload_views.status_json, name="status_json"),
    path("results/<int:job_id>", views.results, name="results"),
    path("user_images/<int:image_id>", views.user_image, name="user_image"),
    path("user_images/<int:image_id>/original", views.original, name="original"),
    path("user_images/<int:image_id>/display", views.display, name="display"),
    path("user_images/<int:image_id>/thumbnail", views.thumbnail, name="thumbnail"),
    path("user_images/<int:image_id>/edit", community_views.edit_image, name="edit_image"),
    path("user_images/<int:image_id>/hide", community_views.hide_image, name="hide_image"),
    path("user_images/<int:image_id>/unhide", community_views.unhide_image, name="unhide_image"),
    path("user_images/<int:image_id>/tags", community_views.add_tag, name="add_tag"),
    path(
        "user_images/<int:image_id>/comments", community_views.comment_image, name="comment_image"
    ),
    path("user_images/<int:image_id>/flags", community_views.set_flags, name="set_flags"),
    path("image_tags/<int:tagged_id>/remove", community_views.remove_tag, name="remove_tag"),
    path("comments/<int:comment_id>/delete", community_views.delete_comment, name="delete_comment"),
    path("flagged", community_views.flagged, name="flagged"),
    path("gallery", views.gallery, name="gallery"),
    path("search", views.search, name="search"),
    path("tags", community_views.tags, name="tags"),
    path("tags/<int:tag_id>", community_views.tag, name="tag"),
    path("albums", views.albums, name="albums"),
    path("albums/new", community_views.new_album, name="new_album"),
    path("albums/<int:album_id>", views.album, name="album"),
    path("albums/<int:album_id>/edit", community_views.edit_album, name="edit_album"),
    path("albums/<int:album_id>/delete", community_views.delete_album, name="delete_album"),
    path("albums/<int:album_id>/comments", community_views.comment_album, name="comment_album"),
    re_path(r"^users/(?P<username>[\w.@+-]+)$", views.user_page, name="user"),
    re_path(
        r"^users/(?P<username>[\w.@+-]+)/albums$", community_views.user_albums, name="user_albums"
    ),
    path("my/images", views.my_images, name="my_images"),
    path("my/submissions", views.my_submissions, name="my_submissions"),
    path("staff/indexes", views.indexes, name="indexes"),
]
