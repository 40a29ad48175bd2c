"""The solving engine: images and star lists in, calibrations out.

This layer imports no Django; the web and queue layers call it.
"""
