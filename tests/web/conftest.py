from tests.webfixtures import data_dir, fake_solver  # noqa: F401
