"""The Confluence Data Center target (8.4 - 10.x): fetch users, groups and memberships; perform actions.

`target.py` is the Target; `read.py` the paged REST reads; `unsynced.py` the websudo'd admin pages
for "unsynced from directory" entries.
"""

from reconcile.targets.confluence_dc.target import ConfluenceDcTarget

__all__ = ["ConfluenceDcTarget"]
