"""Tier 5: headless Chromium (Playwright) against the local stack: the consent pages and the partner web
app, in English and Spanish, with axe-core on every screen."""
