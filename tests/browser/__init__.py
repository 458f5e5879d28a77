"""The studio in a real browser: Playwright driving Debian's Chromium against a launched app."""
