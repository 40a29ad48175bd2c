"""Configure Django for the web, API and queue tests (imported first by their conftests).

pytest-django needs the settings module; pyproject.toml is shared, so the web
test packages configure Django themselves when they are collected.
"""

from __future__ import annotations

import os
import tempfile

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skysolve.web.settings")
# Never write into the checkout's ./var; whitenoise wants its static root to exist.
_TEST_DATA_DIR = tempfile.mkdtemp(prefix="skysolve-tests-")
os.environ["SKYSOLVE_DATA_DIR"] = _TEST_DATA_DIR
os.makedirs(os.path.join(_TEST_DATA_DIR, "static"))
django.setup()
