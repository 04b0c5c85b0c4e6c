"""One TLS trust store for every outbound connection of the skill lifecycle (registries, namespace files).

It trusts the operating system's certificates *and* `SSL_CERT_FILE`/`SSL_CERT_DIR` when they are set:
OpenSSL alone would use the variables *instead of* the system store, and httpx alone would use certifi.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path


def trust_store() -> ssl.SSLContext:
    context = ssl.create_default_context()
    paths = ssl.get_default_verify_paths()
    for cafile in (
        paths.openssl_cafile,
        "/etc/ssl/certs/ca-certificates.crt",
        os.environ.get("SSL_CERT_FILE"),
    ):
        if cafile and Path(cafile).is_file():
            context.load_verify_locations(cafile=cafile)
    for capath in (paths.openssl_capath, os.environ.get("SSL_CERT_DIR")):
        if capath and Path(capath).is_dir():
            context.load_verify_locations(capath=capath)
    return context
