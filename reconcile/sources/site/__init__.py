"""An Atlassian site as a read-only source: `confluence-dc` (dc.py) and `atlassian-cloud` (cloud.py),
read through the targets' own readers; common.py holds the read-only client, error mapping and keying."""
