"""Submissions, user images, jobs, albums, tags and API keys: the domain models."""
