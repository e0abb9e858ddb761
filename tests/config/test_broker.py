"""The embedded file-system broker under a producer and a consumer racing each other
in separate processes: every message arrives whole, once."""

import multiprocessing

from kombu import Connection

MESSAGES = 3000


def _produce(options: dict, transport: str) -> None:
    with Connection("filesystem://", transport=transport, transport_options=options) as conn:
        queue = conn.SimpleQueue("race")
        for n in range(MESSAGES):
            queue.put({"n": n, "padding": "x" * 20_000})


def race(tmp_path, transport: str) -> tuple[list[int], list[Exception]]:
    options = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path), "polling_interval": 0}
    options["control_folder"] = str(tmp_path / "control")
    producer = multiprocessing.get_context("fork").Process(target=_produce, args=(options, transport))
    received, errors = [], []
    with Connection("filesystem://", transport=transport, transport_options=options) as conn:
        queue = conn.SimpleQueue("race")
        producer.start()
        while len(received) + len(errors) < MESSAGES:
            try:
                message = queue.get(timeout=0 if producer.is_alive() else 2)
            except queue.Empty:
                if not producer.is_alive() and not list(tmp_path.glob("*.race.msg")):
                    break
                continue
            except Exception as exc:  # what kombu's own transport raises here: JSONDecodeError
                errors.append(exc)
                continue
            received.append(message.payload["n"])
            message.ack()
    producer.join(60)
    return received, errors


def test_a_consumer_racing_a_producer_reads_every_message_whole_once(tmp_path):
    received, errors = race(tmp_path, "config.broker:Transport")

    assert errors == []
    assert sorted(received) == list(range(MESSAGES))
    assert not list(tmp_path.glob(".*.partial"))
