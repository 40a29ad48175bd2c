from __future__ import annotations

from django.contrib import admin

from skysolve.community.models import Album, Comment, Flag

admin.site.register([Album])


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    """Moderation: staff find comments by author or text and delete them."""

    list_display = ("id", "author", "user_image", "album", "created")
    search_fields = ("author__username", "text")
    list_select_related = ("author",)
    raw_id_fields = ("user_image", "album")


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    list_display = ("kind", "user_image", "user", "created")
    list_filter = ("kind",)
    raw_id_fields = ("user_image",)
