"""kazoo: ephemerals vanish on close, and after expiry of a session whose process died
(the child process exits without closing). argv[1] is the server; needs --tick-time 200."""

import os
import subprocess
import sys
import time

from zkcommon import addr, check, check_eq, connect, wait_for

if len(sys.argv) > 2 and sys.argv[2] == "child":
    # Create an ephemeral, report the session, and die without closing it.
    zk = connect(timeout=2.0)
    zk.create("/abandoned", b"", ephemeral=True)
    print("session %x" % zk.client_id[0], flush=True)
    os._exit(0)

observer = connect(timeout=4.0)

closer = connect(timeout=4.0)
closer.create("/closed", b"", ephemeral=True)
check_eq(observer.exists("/closed").ephemeralOwner, closer.client_id[0], "ephemeralOwner is the session")
closer.stop()
closer.close()
check(observer.exists("/closed") is None, "ephemeral gone right after a clean close")

out = subprocess.run([sys.executable, __file__, addr(), "child"], capture_output=True, text=True, timeout=60)
print(out.stdout + out.stderr, end="")
check_eq(out.returncode, 0, "child created its ephemeral")
died = time.monotonic()
check(observer.exists("/abandoned") is not None, "abandoned ephemeral still present just after the crash")
deleted = []
observer.exists("/abandoned", watch=lambda event: deleted.append(event.type))
wait_for(lambda: observer.exists("/abandoned") is None, "abandoned ephemeral removed by session expiry")
elapsed = time.monotonic() - died
check(elapsed >= 1.0, "removal waited for the 2s session timeout (took %.1fs)" % elapsed)
wait_for(lambda: deleted == ["DELETED"], "exists-watch saw DELETED")

observer.stop()
observer.close()
print("expiry: all checks passed")
