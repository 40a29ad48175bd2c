import tests.djangosetup  # noqa: F401
from tests.webfixtures import data_dir, fake_solver  # noqa: F401
