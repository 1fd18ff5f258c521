"""Microsoft Entra ID as Microsoft Graph v1.0 serves it (users, groups, members, transitive members) plus the
identity platform's client-credentials token endpoint, all under `/entra` (see routes.py); the tenant is world.py.
"""
