"""A local OpenID issuer for the tests: real discovery, a real JWKS, real RS256 tokens.

It serves ``/.well-known/openid-configuration`` and ``/jwks.json`` on 127.0.0.1 from a
thread, so the app finds and fetches its keys over HTTP exactly as it does from your
identity provider; only the keys are made up.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey


class LocalIssuer:
    """An issuer at ``http://127.0.0.1:<port>`` with one RSA signing key.

    The port is bound when the issuer is made, so :attr:`url` can be given to the app
    before :meth:`start` serves it.
    """

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, {"kid": "test-key", "use": "sig"}, private=True)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Serve discovery and the JWKS from a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def token(
        self, subject: str, *, expires_in: int = 300, key: RSAKey | None = None, **claims: Any
    ) -> str:
        """An RS256 token for *subject* from this issuer (signed with *key* if given)."""
        now = int(time.time())
        payload = {"iss": self.url, "sub": subject, "iat": now, "exp": now + expires_in}
        payload.update(claims)
        signer = key or self.key
        header = {"alg": "RS256", "kid": signer.kid}
        return jwt.encode(header, payload, signer, algorithms=["RS256"])

    def _documents(self) -> dict[str, bytes]:
        discovery = {"issuer": self.url, "jwks_uri": f"{self.url}/jwks.json"}
        jwks = {"keys": [self.key.as_dict(private=False)]}
        return {
            "/.well-known/openid-configuration": json.dumps(discovery).encode(),
            "/jwks.json": json.dumps(jwks).encode(),
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = issuer._documents().get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the tests' output is about the app

        return Handler
