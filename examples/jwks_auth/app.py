"""Sign-in with an identity provider (Clerk, Auth0, Keycloak, ...): verify its JWTs
against the provider's published keys (JWKS), found by OpenID discovery.

Configure with environment variables (or a ``.env`` file)::

    AUTH_ISSUER=https://your-tenant.clerk.accounts.dev   # the tokens' "iss"
    AUTH_AUDIENCE=...             # optional: required "aud"
    AUTH_AUTHORIZED_PARTIES=https://app.example.com      # optional: allowed "azp", comma-separated

Run ``python examples/jwks_auth/app.py``; a browser connects with
``new PartySocket({host, room, query: async () => ({token: await getToken()})})``,
i.e. ``ws://127.0.0.1:1999/parties/main/<room>?token=<jwt>``; HTTP clients send
``Authorization: Bearer <jwt>``.
"""

from partydeco import auth, party
from partydeco.env import load_env

env = load_env()
parties = [p for p in env.get("AUTH_AUTHORIZED_PARTIES", "").split(",") if p]

verifier = auth.JWTVerifier.from_issuer(
    env.get("AUTH_ISSUER", "https://issuer.invalid"),
    audience=env.get("AUTH_AUDIENCE") or None,
    authorized_parties=parties or None,
)

# ?token=<jwt> on the WebSocket upgrade; Authorization: Bearer <jwt> on HTTP.
# Both forward the token's "sub" to the room as the X-User-ID header.
party.before_connect(auth.before_connect_hook(verifier))
party.before_request(auth.before_request_hook(verifier))


@party.on_connect
async def welcome(connection, ctx):
    connection.send(f"welcome {ctx.request.headers['X-User-ID']}")


@party.on_message
async def relay(message, sender):
    sender.room.broadcast(message, without=[sender.id])


@party.on_request
async def whoami(request, room):
    return {"user": request.headers["X-User-ID"], "room": room.id}


if __name__ == "__main__":
    party.run()
