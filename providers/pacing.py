"""Throughput pacing per sender address: a carrier filters a long code that sends faster
than about one message a second, so dispatch asks here before each provider call.

Each sender has a schedule (generic cell rate: its "theoretical arrival time", the
earliest a next message may go) shared by every worker: in Redis, updated by one Lua
script, atomic; without Redis, in the cache under a lock (config/cache.py's file cache
is atomic across processes). A message that may go now takes its slot and goes; one
over the limit is given the next free slot (reserved under its reference, oldest first
within a call) and waits for it: when it comes back at that time it goes without taking
another. No burst beyond one message: the carriers' limits are per second, not per minute.

Times are the store's (Redis' TIME), so workers with skewed clocks still agree.
"""

import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

# KEYS: the sender's next free time, its reservations (reference -> slot).
# ARGV: seconds per unit of cost, then (reference, cost) pairs in the order to serve.
# Returns, per pair, the seconds to wait ("0": go now).
_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local per = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local waits = {}
for i = 2, #ARGV, 2 do
  local slot = redis.call('HGET', KEYS[2], ARGV[i])
  if slot then
    slot = tonumber(slot)
    if slot <= now then
      redis.call('HDEL', KEYS[2], ARGV[i])
      waits[#waits + 1] = '0'
    else
      waits[#waits + 1] = string.format('%.6f', slot - now)
    end
  else
    local start = tat
    tat = tat + tonumber(ARGV[i + 1]) * per
    if start <= now then
      waits[#waits + 1] = '0'
    else
      redis.call('HSET', KEYS[2], ARGV[i], string.format('%.6f', start))
      waits[#waits + 1] = string.format('%.6f', start - now)
    end
  end
end
local keep = math.ceil((tat - now) * 1000) + 60000
redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX', keep)
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], keep) end
return waits
"""
_script = None
_local_lock = threading.Lock()


@dataclass(frozen=True)
class PaceRequest:
    sender: str  #: the address the message is sent from
    reference: str  #: the message, so a reserved slot is found again
    cost: float  #: messages or segments
    per_second: float  #: the sender's throughput


def pacing_take(requests: list[PaceRequest]) -> list[float]:
    """For each request, in order: 0.0 if it may go now (its slot is taken), else the
    seconds until its slot (reserved for it). Requests of one sender are served in the
    order given. One round trip to Redis for the whole list."""
    by_sender: dict[tuple[str, float], list[int]] = defaultdict(list)
    for index, request in enumerate(requests):
        by_sender[(request.sender, request.per_second)].append(index)
    waits = [0.0] * len(requests)
    if not by_sender:
        return waits
    take = _take_redis if settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache" else _take_cache
    for indexes, answers in zip(by_sender.values(), take(requests, by_sender), strict=True):
        for index, wait in zip(indexes, answers, strict=True):
            waits[index] = float(wait)
    return waits


def _keys(sender: str) -> tuple[str, str]:
    return f"pace:{sender}:tat", f"pace:{sender}:slots"


def _take_redis(requests: list[PaceRequest], by_sender: dict) -> list[list]:
    global _script
    from django_redis import get_redis_connection

    client = get_redis_connection("default")
    if _script is None:
        _script = client.register_script(_SCRIPT)
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    pipe = client.pipeline(transaction=False)
    for (sender, per_second), indexes in by_sender.items():
        args = [1.0 / per_second]
        for index in indexes:
            args += [requests[index].reference, requests[index].cost]
        _script(keys=[f"{prefix}:{key}" for key in _keys(sender)], args=args, client=pipe)
    return [[float(w) for w in answer] for answer in pipe.execute()]


@contextmanager
def _locked():
    """The cache's cross-process lock where it has one (config/cache.py), else this
    process's: the local shapes without Redis."""
    lock = getattr(cache, "locked", None)
    with _local_lock, lock() if lock else _nothing():
        yield


@contextmanager
def _nothing():
    yield


def _take_cache(requests: list[PaceRequest], by_sender: dict) -> list[list]:
    """The script's algorithm on the Django cache, under a lock."""
    answers = []
    with _locked():
        now = time.time()
        for (sender, per_second), indexes in by_sender.items():
            tat_key, slots_key = _keys(sender)
            tat = max(cache.get(tat_key, 0.0), now)
            slots = cache.get(slots_key, {})
            waits = []
            for index in indexes:
                reference = requests[index].reference
                if reference in slots:
                    slot = slots[reference]
                    if slot <= now:
                        del slots[reference]
                    waits.append(max(slot - now, 0.0))
                    continue
                start, tat = tat, tat + requests[index].cost / per_second
                if start > now:
                    slots[reference] = start
                waits.append(max(start - now, 0.0))
            keep = tat - now + 60
            cache.set(tat_key, tat, keep)
            cache.set(slots_key, slots, keep)
            answers.append(waits)
    return answers


def pacing_reset() -> None:
    """Forget the cached script (tests that switch caches)."""
    global _script
    _script = None
