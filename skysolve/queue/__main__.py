"""``python -m skysolve.queue``: run one embedded worker, or the Celery dispatcher.

``skysolve serve`` starts these next to the web server.
"""

from __future__ import annotations

import os


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skysolve.web.settings")
    import django

    django.setup()
    from django.conf import settings

    if settings.SKYSOLVE_QUEUE == "celery":
        from skysolve.queue.dispatch import Dispatcher

        Dispatcher().run_forever()
        return
    from skysolve.queue.worker import run_embedded_worker

    run_embedded_worker()  # with its heartbeat


if __name__ == "__main__":
    main()
