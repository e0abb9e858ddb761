"""A file cache whose read-modify-write operations are atomic across processes.

Django's FileBasedCache implements `add` and `incr` as a read followed by a write, so two
processes can both "win" an add or lose an increment, and its `incr` forgets the key's
expiry. Rate limits and circuit breakers need both to be exact across the web workers,
the Celery worker and beat when no Redis is configured; one flock around them is enough
for the local shape's traffic.
"""

import fcntl
import os
import pickle
import time
from contextlib import contextmanager

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.filebased import FileBasedCache


class LockedFileCache(FileBasedCache):
    @contextmanager
    def _lock(self):
        self._createdir()
        with open(os.path.join(self._dir, ".lock"), "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def locked(self):
        """Hold the cache's lock across several operations (a read and a write that
        must not interleave with another process's)."""
        return self._lock()

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        with self._lock():
            return super().add(key, value, timeout, version)

    def incr(self, key, delta=1, version=None):
        with self._lock():
            value = self.get(key, version=version)
            if value is None:
                raise ValueError(f"Key '{key}' not found")
            new_value = value + delta
            self.set(key, new_value, self._remaining(key, version), version)
            return new_value

    def _remaining(self, key, version) -> float | None:
        """The seconds left before `key` expires (None: never), so incr keeps the TTL."""
        try:
            with open(self._key_to_file(key, version), "rb") as f:
                expiry = pickle.load(f)  # noqa: S301 (our own cache files, as Django reads them)
        except (FileNotFoundError, EOFError):
            return 0
        return None if expiry is None else max(expiry - time.time(), 0.001)
