"""Serving an app: the ASGI entry, the two protocol paths, and running Hypercorn.

- :mod:`~partydeco.server.asgi`: the ASGI entry (lifespan, party URLs, static
  assets, Quart for the rest);
- :mod:`~partydeco.server.runtime`: what serving takes, built at start-up;
- :mod:`~partydeco.server.websocket` and :mod:`~partydeco.server.http`: one
  WebSocket and one HTTP request to a party URL, top to bottom;
- :mod:`~partydeco.server.run`: Hypercorn's configuration, workers and reload;
- :mod:`~partydeco.server.hypercorn`: the fixes partydeco applies to Hypercorn;
- :mod:`~partydeco.server.static`: static assets.
"""
