"""Shared helpers for the kazoo scripts: connecting, and checks that print what they verify
and exit non-zero on the first failure."""

import logging
import sys
import time

from kazoo.client import KazooClient

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


def addr():
    if len(sys.argv) < 2:
        sys.exit("usage: %s HOST:PORT [args...]" % sys.argv[0])
    return sys.argv[1]


def connect(timeout=10.0, **kwargs):
    zk = KazooClient(hosts=addr(), timeout=timeout, **kwargs)
    zk.start(timeout=30)
    return zk


def check(cond, what):
    if not cond:
        print("FAIL: " + what, flush=True)
        sys.exit(1)
    print("ok: " + what, flush=True)


def check_eq(got, want, what):
    check(got == want, "%s (got %r, want %r)" % (what, got, want))


def check_raises(exc_type, fn, what):
    try:
        fn()
    except exc_type:
        print("ok: %s raises %s" % (what, exc_type.__name__), flush=True)
        return
    except Exception as e:  # noqa: BLE001 - report whatever was raised instead
        print("FAIL: %s raised %r, want %s" % (what, e, exc_type.__name__), flush=True)
        sys.exit(1)
    print("FAIL: %s did not raise %s" % (what, exc_type.__name__), flush=True)
    sys.exit(1)


def wait_for(cond, what, timeout=20.0):
    """Polls cond() until true; fails the script at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            print("ok: " + what, flush=True)
            return
        time.sleep(0.05)
    print("FAIL: timed out after %.0fs waiting for: %s" % (timeout, what), flush=True)
    sys.exit(1)
