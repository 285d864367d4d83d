"""Bounded polling for integration tests: wait for a condition, never forever."""

import time


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Returns predicate()'s first truthy value; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_until_listening(listening, proc, timeout: float) -> bool:
    """True once the `listening` event is set; False if `proc` exits or `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if listening.wait(0.05):
            return True
        if proc.poll() is not None:
            return False
    return False
