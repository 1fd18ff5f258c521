"""Targets: the systems whose users are reconciled (Confluence DC, Atlassian Cloud, memory)."""
