"""Sources: where the desired state comes from (inline yaml, csv, ldap)."""
