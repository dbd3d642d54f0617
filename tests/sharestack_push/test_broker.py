"""The embedded broker: kombu's filesystem transport with atomic writes."""
import multiprocessing
import os

from kombu import Connection

from sharestack_push import broker

MESSAGES_PER_PRODUCER = 300
PRODUCERS = 4


def connection(folder: str) -> Connection:
    broker.register()
    return Connection(
        "filesystem-atomic://",
        transport_options={
            "data_folder_in": folder,
            "data_folder_out": folder,
            "control_folder": folder,
        },
    )


def produce(folder: str, producer: int) -> None:
    with connection(folder) as conn:
        queue = conn.SimpleQueue("jobs")
        for number in range(MESSAGES_PER_PRODUCER):
            queue.put({"producer": producer, "number": number})
        queue.close()


def test_put_leaves_only_complete_message_files(tmp_path):
    with connection(str(tmp_path)) as conn:
        queue = conn.SimpleQueue("jobs")
        queue.put({"hello": "world"})
        queue.close()
    names = [name for name in os.listdir(tmp_path) if name.endswith(".msg") or "partial" in name]
    assert len(names) == 1
    assert names[0].endswith(".jobs.msg")


def test_concurrent_producers_lose_nothing(tmp_path):
    folder = str(tmp_path)
    context = multiprocessing.get_context("spawn")
    producers = [context.Process(target=produce, args=(folder, n)) for n in range(PRODUCERS)]
    received = set()
    with connection(folder) as conn:
        queue = conn.SimpleQueue("jobs")
        for process in producers:
            process.start()
        expected = PRODUCERS * MESSAGES_PER_PRODUCER
        while len(received) < expected:
            message = queue.get(timeout=30)
            received.add((message.payload["producer"], message.payload["number"]))
            message.ack()
        queue.close()
    for process in producers:
        process.join(timeout=30)
    assert len(received) == PRODUCERS * MESSAGES_PER_PRODUCER
