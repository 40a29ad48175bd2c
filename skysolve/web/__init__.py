"""The Django project of skysolve: settings, URLs, WSGI entry point and system checks."""
