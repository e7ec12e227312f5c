"""The cluster's publisher: events reach each process in order, a broadcast as one event."""

from __future__ import annotations

import asyncio

from partydeco.backplane.redis.relay import Publisher
from partydeco.backplane.redis.wire import Fanout, Shut, decode_batch
from partydeco.storage.rediskeys import Keyspace, connect
from tests.support.redis_server import RedisServer


async def test_one_frame_for_many_sockets_of_a_process_is_one_event(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    keys = Keyspace(redis_prefix)
    client = connect(redis_server.url)
    pubsub = client.pubsub()
    await pubsub.subscribe(keys.channel("n1"), keys.channel("n2"))
    publisher = Publisher(keys.channel, max_events=100, max_bytes=1 << 20)
    publisher.enabled = True
    frame = "a broadcast frame"
    assert publisher.post_frame("n1", "s1", frame)
    assert publisher.post_frame("n2", "s4", frame)  # another process: its own event
    assert publisher.post_frame("n1", "s2", frame)  # joins the first event for n1
    assert publisher.post("n1", Shut("s9", 1000, ""))
    assert publisher.post_frame("n1", "s3", frame)  # after the close: a new event
    assert publisher.post_frame("n1", "s1", "another frame")  # another frame: a new event
    task = asyncio.create_task(publisher.run(client))
    try:
        received: dict[str, list[object]] = {}
        async with asyncio.timeout(5):
            while sum(len(events) for events in received.values()) < 5:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    channel = message["channel"].decode()
                    received.setdefault(channel, []).extend(decode_batch(message["data"]))
        assert received[keys.channel("n1")] == [
            Fanout(["s1", "s2"], frame),
            Shut("s9", 1000, ""),
            Fanout(["s3"], frame),
            Fanout(["s1"], "another frame"),
        ]
        assert received[keys.channel("n2")] == [Fanout(["s4"], frame)]
        # Published: a later post of the same frame cannot join what already left.
        await publisher.drain()
        assert publisher.post_frame("n1", "s5", frame)
        await publisher.drain()
        async with asyncio.timeout(5):
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    assert decode_batch(message["data"]) == [Fanout(["s5"], frame)]
                    break
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()
