"""The local Atlassian simulator (`reconcile sim`): Confluence DC and Atlassian Cloud APIs in one ASGI app.

Start with `build_app()` (reconcile/sim/app.py); the seam for the Cloud part is described there.
"""
