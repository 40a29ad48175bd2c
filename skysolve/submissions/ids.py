"""Random, non-sequential public ids.

Results of private jobs may be readable by whoever knows the id (nova's rule),
so ids must not be guessable by counting.  They stay below 2**31 - 1 so that
every client that stores them in a signed 32-bit integer keeps working.
"""

from __future__ import annotations

import secrets

#: Ids are drawn uniformly from [MIN_ID, MAX_ID).
MIN_ID = 1
MAX_ID = 2**31 - 1


def random_id() -> int:
    return MIN_ID + secrets.randbelow(MAX_ID - MIN_ID)
