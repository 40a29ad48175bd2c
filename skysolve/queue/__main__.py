"""``python -m skysolve.queue``: run one embedded worker (``skysolve serve`` starts these)."""

from __future__ import annotations

import os


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skysolve.web.settings")
    import django

    django.setup()
    from skysolve.queue.worker import Worker

    Worker().run_forever()


if __name__ == "__main__":
    main()
