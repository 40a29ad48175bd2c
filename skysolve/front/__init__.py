"""The web site: upload, live status, results, galleries and search."""
