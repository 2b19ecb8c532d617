"""Only the users with the longest histories: the naive design's worst case.

Every simulated user picks its user ids among the seed manifest's whales.
"""

from scenarios.common import WhaleUser

__all__ = ["WhaleUser"]
