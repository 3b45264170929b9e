#!/usr/bin/env python3
"""Add the page's Content-Security-Policy after trunk has written index.html.

Run by trunk as a post_build hook (TRUNK_STAGING_DIR names the build's staging folder).
trunk writes a small inline module script that loads the wasm; the policy allows exactly
that script by its SHA-256 and nothing inline besides. Everything else comes from the
page's own origin: no request goes to any other host.
"""

import base64
import hashlib
import os
import re
import sys

POLICY = (
    "default-src 'self'; "
    "script-src 'self' 'wasm-unsafe-eval' {hashes}; "
    "style-src 'self'; "
    "img-src 'self' blob: data:; "
    "connect-src 'self'; "
    "worker-src 'self'; "
    "object-src 'none'; "
    "base-uri 'none'; "
    "form-action 'none'"
)


def main() -> int:
    staging = os.environ.get("TRUNK_STAGING_DIR")
    if not staging:
        print("csp.py: TRUNK_STAGING_DIR is not set; run it as a trunk hook", file=sys.stderr)
        return 1
    path = os.path.join(staging, "index.html")
    with open(path, encoding="utf-8") as f:
        html = f.read()
    inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", html, flags=re.S)
    if not inline:
        print("csp.py: found no inline loader script in index.html", file=sys.stderr)
        return 1
    hashes = " ".join(
        "'sha256-%s'" % base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode()
        for s in inline
    )
    meta = '<meta http-equiv="Content-Security-Policy" content="%s">' % POLICY.format(hashes=hashes)
    html, n = re.subn(r'(<meta charset="utf-8">)', r"\1\n  " + meta.replace("\\", "\\\\"), html, count=1)
    if n != 1:
        print("csp.py: index.html has no <meta charset> to put the policy after", file=sys.stderr)
        return 1
    with open(path, "w", encoding="utf-8") as f:
        f.write(html)
    print(f"csp.py: policy set, {len(inline)} inline script(s) allowed by hash")
    return 0


if __name__ == "__main__":
    sys.exit(main())
