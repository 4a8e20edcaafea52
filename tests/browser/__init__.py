"""Browser tests: Debian's Chromium, driven by playwright, against real nodes on loopback."""
