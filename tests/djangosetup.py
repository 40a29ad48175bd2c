"""Configure Django for the web, API and queue tests.

pytest-django needs the settings module; pyproject.toml is shared, so
tests/conftest.py imports this when pytest starts collecting a Django test
package (``DJANGO_PACKAGES`` there), and engine-only runs never import Django.
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
