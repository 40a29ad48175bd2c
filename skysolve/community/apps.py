from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save


class CommunityConfig(AppConfig):
    name = "skysolve.community"
    label = "community"
    verbose_name = "skysolve community"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from skysolve.community import tagcounts
        from skysolve.community.models import TaggedUserImage

        pre_save.connect(tagcounts.marking, sender=TaggedUserImage, dispatch_uid="tag-public")
        post_save.connect(tagcounts.tagged, sender=TaggedUserImage, dispatch_uid="tag-count+")
        pre_delete.connect(tagcounts.untagging, sender=TaggedUserImage, dispatch_uid="tag-count?")
        post_delete.connect(tagcounts.untagged, sender=TaggedUserImage, dispatch_uid="tag-count-")
