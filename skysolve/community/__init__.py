"""The community: albums, tags, comments and flags on images, and their rules."""
