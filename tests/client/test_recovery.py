"""The Python client's recovery state: what it makes of each frame a history room sends."""

from __future__ import annotations

import json

from partydeco.client.recovery import Recovery


def test_envelopes_give_back_what_was_broadcast_and_move_the_offset() -> None:
    recovery = Recovery()
    assert recovery.query() == {}
    assert recovery.receive('{"type":"partydeco.position","epoch":"e1","offset":4}') is None
    assert recovery.query() == {"since": "4", "epoch": "e1"}
    text = recovery.receive('{"type":"partydeco.message","offset":5,"data":"bob: \\"hi\\""}')
    assert text == 'bob: "hi"'
    obj = recovery.receive('{"type":"partydeco.message","offset":6,"data":{"a":[1,2]}}')
    assert obj == '{"a":[1,2]}'
    assert recovery.query() == {"since": "6", "epoch": "e1"}


def test_other_frames_pass_unchanged() -> None:
    recovery = Recovery()
    for frame in ("hello", b"\x00", '{"type":"presence"}',
                  '{"type":"partydeco.join","user":"a","count":1}',
                  '{"type":"partydeco.message" broken'):  # fmt: skip
        assert recovery.receive(frame) == frame
    assert (recovery.epoch, recovery.offset) == (None, 0)


def test_a_resync_is_delivered_and_a_lost_epoch_becomes_one() -> None:
    recovery = Recovery()
    recovery.receive('{"type":"partydeco.position","epoch":"e1","offset":3}')
    resync = '{"type":"partydeco.resync","epoch":"e1","offset":9,"reason":"expired"}'
    assert recovery.receive(resync) == resync
    assert recovery.query() == {"since": "9", "epoch": "e1"}
    # A position in another epoch, unasked: the room lost its history meanwhile.
    lost = recovery.receive('{"type":"partydeco.position","epoch":"e2","offset":0}')
    assert isinstance(lost, str)
    assert json.loads(lost) == {
        "type": "partydeco.resync", "epoch": "e2", "offset": 0, "reason": "history_lost",
    }  # fmt: skip
    assert recovery.query() == {"since": "0", "epoch": "e2"}
