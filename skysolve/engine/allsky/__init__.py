"""All-sky and fisheye frames: a lens model, its blind search, its WCS, camera profiles.

Nothing is imported here: the pipeline asks :func:`.sky.looks_like_allsky`
before every solve, and that must not pull in astropy (a fast-path answer
without files imports none).
"""
