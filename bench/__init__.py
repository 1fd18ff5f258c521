"""`make bench`: the performance table of SPEC §11 (not part of `make test`)."""
