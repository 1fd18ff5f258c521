"""`python -m reconcile.cli`: the console script."""

from reconcile.cli import main

main()
