"""Bounded waits for integration tests, for a condition or for a child process to end."""

import subprocess
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


def stop_process(proc, timeout: float) -> None:
    """Ends a child process started by a test: SIGTERM, then SIGKILL if it has not exited within
    `timeout` seconds. Does nothing for one already gone."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
