"""Submissions, user images and the jobs that solve them: the data model and its rules."""
