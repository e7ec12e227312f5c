"""What stands between a client and a room: admission limits, origins, trusted proxies,
and token expiry on open sockets.

Every check here runs before a hook or a handler does, and every table it keeps is
bounded. The options are :class:`partydeco.Config` fields; nothing here is imported by
user code.
"""
