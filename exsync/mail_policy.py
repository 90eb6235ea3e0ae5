"""The Content-Security-Policy of pages that show an e-mail's HTML part (in a sandboxed frame)."""

# Inherited by the srcdoc frames: no script anywhere, nothing fetched from another site.
MAIL_CSP = (
    "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'"
)
