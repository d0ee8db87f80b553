"""The queue's message encoding: taskiq's format, read back by taskiq's own decoder on either side."""

from __future__ import annotations

import json

from taskiq.formatters.proxy_formatter import ProxyFormatter
from taskiq.message import TaskiqMessage
from taskiq.serializers import JSONSerializer

from infrastructure.queue import CompactJSONFormatter, StreamBroker

MESSAGE = TaskiqMessage(
    task_id="0f3c",
    task_name="submit_generation",
    labels={"queue_name": "genhub:tasks", "retries": 2},
    labels_types={"retries": 1},
    args=["ünïcode", 1.5],
    kwargs={"generation_id": "8a3e6f0e-94b4-4c5e-9f7a-1d2c3b4a5e6f", "nested": {"a": [1, None, True]}},
)


def test_the_stream_broker_encodes_with_the_compact_formatter_when_its_serializer_is_json() -> None:
    broker = StreamBroker("redis://127.0.0.1:6379/0")

    assert isinstance(broker.serializer, JSONSerializer)
    assert isinstance(broker.formatter, CompactJSONFormatter)


def test_compact_and_taskiq_encodings_carry_the_same_message() -> None:
    broker = StreamBroker("redis://127.0.0.1:6379/0")
    ours, theirs = CompactJSONFormatter(broker).dumps(MESSAGE), ProxyFormatter(broker).dumps(MESSAGE)

    assert json.loads(ours.message) == json.loads(theirs.message)
    assert (ours.task_id, ours.task_name, ours.labels) == (theirs.task_id, theirs.task_name, theirs.labels)
    # each side decodes the other's bytes (a rolling deploy mixes old and new producers)
    assert ProxyFormatter(broker).loads(ours.message) == MESSAGE
    assert CompactJSONFormatter(broker).loads(theirs.message) == MESSAGE
