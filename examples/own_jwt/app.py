"""Your own tokens: a ``login`` party checks a password and mints a short-lived HS256
JWT; the ``main`` party's rooms accept only that token.

Configure with environment variables (or a ``.env`` file)::

    JWT_SECRET=<32+ random characters>
    DEMO_PASSWORD=<the password every demo user logs in with>

(``python -c "import secrets; print(secrets.token_urlsafe(32))"`` makes a good secret.)

Then ``POST /parties/login/default`` with ``{"username": "ada", "password": "..."}``
returns ``{"token": "..."}``; connect to ``/parties/main/<room>?token=<token>``.
"""

import hmac

from partydeco import Party, Response, auth, party, requires_env
from partydeco.env import load_env

ISSUER = "partydeco-own-jwt-example"
env = load_env()
SECRET = env.get("JWT_SECRET", "")
if len(SECRET) < 32:
    raise SystemExit("set JWT_SECRET to at least 32 random characters")

verifier = auth.JWTVerifier.from_secret(SECRET, issuer=ISSUER)
login = Party("login")


@login.on_request
@requires_env("DEMO_PASSWORD")  # warned about as the app starts when it is not set
async def sign_in(request, room):
    if request.method != "POST":
        return Response("POST a JSON body with username and password", status=405)
    try:
        body = await request.json()
        username, password = str(body["username"]), str(body["password"])
    except Exception:
        return Response("expected JSON with username and password", status=400)
    expected = room.env.get("DEMO_PASSWORD", "")
    if not expected or not hmac.compare_digest(password.encode(), expected.encode()):
        return Response("wrong username or password", status=401)
    if not username:
        return Response("expected JSON with username and password", status=400)
    return {"token": auth.issue_token(SECRET, username, issuer=ISSUER, expires_in=300)}


party.before_connect(auth.before_connect_hook(verifier))


@party.on_connect
async def welcome(connection, ctx):
    connection.send(f"welcome {ctx.request.headers['X-User-ID']}")


@party.on_message
async def relay(message, sender):
    sender.room.broadcast(message, without=[sender.id])


if __name__ == "__main__":
    party.run()
