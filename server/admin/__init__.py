"""Administration: accounts, the roster import, forms, uploads, and the demo county."""
