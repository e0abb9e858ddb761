"""Sends through the load balancer at a steady rate from a few threads, keeping the id
of every message a 202 accepted: `python -m bench.cluster.drive URL KEY COUNT RATE OUT`.
Writes {"accepted": [ids], "errors": {what: n}, "seconds": s} to OUT."""

import http.client
import json
import sys
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

from bench.options import RECIPIENTS, SENDER

THREADS = 8


def drive(url: str, api_key: str, count: int, rate: float) -> dict:
    parts = urlsplit(url)
    accepted: list[int] = []
    errors: Counter = Counter()
    lock = threading.Lock()
    started = time.monotonic()
    numbers = iter(range(count))

    def sender() -> None:
        connection = None
        while True:
            with lock:
                n = next(numbers, None)
            if n is None:
                break
            # Open loop while the cluster keeps up: message n leaves at n / rate.
            time.sleep(max(0.0, started + n / rate - time.monotonic()))
            body = json.dumps(
                {
                    "from": SENDER,
                    "to": f"+1201555{n % RECIPIENTS:04d}",
                    "type": "sms",
                    "body": f"Cluster message {n}",
                    "attachments": [],
                    "timestamp": "2024-11-01T14:00:00Z",
                }
            )
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"}
            try:
                connection = connection or http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=60)
                connection.request("POST", "/api/messages/sms", body, headers)
                response = connection.getresponse()
                payload = response.read()
                if response.status == 202:
                    with lock:
                        accepted.append(json.loads(payload)["id"])
                else:
                    errors[f"http_{response.status}"] += 1
            except (OSError, http.client.HTTPException) as exc:
                errors[type(exc).__name__] += 1
                if connection is not None:
                    connection.close()
                connection = None

    threads = [threading.Thread(target=sender) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"accepted": accepted, "errors": dict(errors), "seconds": round(time.monotonic() - started, 1)}


if __name__ == "__main__":
    url, key, count, rate, out = sys.argv[1:6]
    with open(out, "w") as f:
        json.dump(drive(url, key, int(count), float(rate)), f)
