"""Headers on every answer that tell the browser what it may do with it (docs/deploy.md,
"Security").

- Every ``/api/`` answer: ``Cache-Control: no-store``, photos included: they carry personal
  data, and a phone or office PC must not keep them in its HTTP cache after the user signs
  out or the device is revoked. And a policy that allows nothing: JSON is never a page.
- Every answer: no MIME sniffing, no Referer sent onwards, never in a frame.
- HSTS only on a request that came over HTTPS. ``request.is_secure`` believes
  ``X-Forwarded-Proto`` only from the proxies that ``ZOUFANG_PROXY_HOPS`` declares, so a
  client on plain http cannot forge it; on plain http the header would mean nothing anyway.

Pages set their own Content-Security-Policy (server/web.py); a policy a view set is kept.
"""

from __future__ import annotations

from flask import Response, request

HSTS = "max-age=31536000; includeSubDomains"
API_POLICY = "default-src 'none'; frame-ancestors 'none'"


def security_headers(response: Response) -> Response:
    headers = response.headers
    if request.path.startswith("/api/"):
        headers["Cache-Control"] = "no-store"
        headers.setdefault("Content-Security-Policy", API_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    if request.is_secure:
        headers["Strict-Transport-Security"] = HSTS
    return response
