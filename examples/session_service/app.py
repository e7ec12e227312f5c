"""Opaque session tokens: ask your session service (an OAuth 2.0 token introspection
endpoint, RFC 7662) whether a token is live. Active answers are cached briefly.

Configure with environment variables (or a ``.env`` file)::

    SESSION_INTROSPECTION_URL=https://auth.example.com/oauth2/introspect
    SESSION_CLIENT_ID=rooms
    SESSION_CLIENT_SECRET=...

Connect to ``/parties/main/<room>?token=<session token>``.
"""

from partydeco import auth, party
from partydeco.env import load_env

env = load_env()
verifier = auth.IntrospectionVerifier(
    env.get("SESSION_INTROSPECTION_URL", "https://auth.invalid/oauth2/introspect"),
    client_id=env.get("SESSION_CLIENT_ID", ""),
    client_secret=env.get("SESSION_CLIENT_SECRET", ""),
    cache_ttl=10,  # a revoked session is refused at most 10 s later
)

party.before_connect(
    auth.before_connect_hook(verifier, forward={"X-User-ID": "sub", "X-Scope": "scope"})
)
party.before_request(auth.before_request_hook(verifier))


@party.on_connect
async def welcome(connection, ctx):
    headers = ctx.request.headers
    connection.send(f"welcome {headers['X-User-ID']} ({headers.get('X-Scope', '')})")


@party.on_request
async def whoami(request, room):
    return {"user": request.headers["X-User-ID"]}


if __name__ == "__main__":
    party.run()
