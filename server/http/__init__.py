"""The HTTP edge: the blueprints under /api/v1 and the pages, and what every request and
answer passes through (errors, security headers, JSON, request checks)."""
