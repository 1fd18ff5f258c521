"""The Okta source (`type: okta`): users, statuses and group memberships from an Okta org's Management API.

`settings` is imported by the registry at start-up; `source` (the reader) only when a source is opened.
"""
