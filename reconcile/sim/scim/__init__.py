"""A SCIM 2.0 service provider (RFC 7643/7644) under `/scim/v2`: Users, Groups (groups in groups), list paging by
startIndex/count with a page-size cap, `filter`, `attributes`/`excludedAttributes`, bearer tokens, 429 + Retry-After.
"""
