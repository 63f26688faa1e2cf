"""kazoo recipes against the server at argv[1]; argv[2] picks one:
lock, election, counter, barrier, double_barrier."""

import sys
import threading

from zkcommon import check, check_eq, connect, wait_for


def lock():
    a, b = connect(), connect()
    la, lb = a.Lock("/lock", "a"), b.Lock("/lock", "b")
    check(la.acquire(timeout=10), "a acquires the free lock")
    check(not lb.acquire(blocking=False), "b cannot acquire while a holds it")
    check_eq(sorted(la.contenders()), ["a"], "contenders while a holds")
    got = threading.Event()

    def waiter():
        if lb.acquire(timeout=20):  # raises LockTimeout (and the check below fails) if stuck
            got.set()

    t = threading.Thread(target=waiter)
    t.start()
    wait_for(lambda: len(a.get_children("/lock")) == 2, "b queued behind a")
    check(not got.is_set(), "b still waiting")
    la.release()
    wait_for(got.is_set, "b acquires after a releases")
    t.join()
    # A holder whose session closes releases the lock for the next waiter.
    c = connect()
    lc = c.Lock("/lock", "c")
    held = threading.Event()

    def waiter_c():
        if lc.acquire(timeout=20):
            held.set()

    t = threading.Thread(target=waiter_c)
    t.start()
    wait_for(lambda: len(a.get_children("/lock")) == 2, "c queued behind b")
    b.stop()
    b.close()
    wait_for(held.is_set, "c acquires when b's session closes")
    t.join()
    lc.release()
    for z in (a, c):
        z.stop()
        z.close()


def election():
    clients = [connect() for _ in range(3)]
    leaders = []
    stop = threading.Event()

    def run(i):
        def lead():
            leaders.append(i)
            stop.wait(30)

        clients[i].Election("/election", "node-%d" % i).run(lead)

    threads = []
    for i in range(3):
        t = threading.Thread(target=run, args=(i,), daemon=True)
        t.start()
        threads.append(t)
        if i == 0:
            wait_for(lambda: leaders == [0], "first candidate becomes leader")
        # Register one at a time so the order of succession is known.
        wait_for(lambda: len(clients[0].get_children("/election")) == i + 1, "%d candidates registered" % (i + 1))
    check_eq(leaders, [0], "only one leader")
    contenders = clients[1].Election("/election").contenders()
    check_eq(contenders[0], "node-0", "leader is first contender")
    clients[0].stop()  # leader's session closes: next in line takes over
    clients[0].close()
    wait_for(lambda: len(leaders) >= 2, "another candidate takes over")
    check_eq(leaders, [0, 1], "the next candidate in line took over")
    stop.set()
    for z in clients[1:]:
        z.stop()
        z.close()


def counter():
    clients = [connect() for _ in range(3)]

    def bump(z):
        c = z.Counter("/counter")
        for _ in range(30):
            c += 1

    threads = [threading.Thread(target=bump, args=(z,)) for z in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    check_eq(clients[0].Counter("/counter").value, 90, "concurrent increments are not lost")
    f = clients[1].Counter("/fcounter", default=0.5)
    f += 1.25
    check_eq(clients[2].Counter("/fcounter", default=0.5).value, 1.75, "float counter")
    for z in clients:
        z.stop()
        z.close()


def barrier():
    a, b = connect(), connect()
    bar = a.Barrier("/barrier")
    bar.create()
    check(not b.Barrier("/barrier").wait(timeout=0.5), "wait times out while barrier is up")
    released = threading.Event()

    def waiter():
        if b.Barrier("/barrier").wait(timeout=20):
            released.set()

    t = threading.Thread(target=waiter)
    t.start()
    bar.remove()
    wait_for(released.is_set, "waiter released when the barrier is removed")
    t.join()
    for z in (a, b):
        z.stop()
        z.close()


def double_barrier():
    clients = [connect() for _ in range(3)]
    entered, left = [], []

    def member(i):
        db = clients[i].DoubleBarrier("/dbarrier", 3, identifier="m%d" % i)
        db.enter()
        entered.append(i)
        db.leave()
        left.append(i)

    threads = [threading.Thread(target=member, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    wait_for(lambda: clients[0].exists("/dbarrier") and len(clients[0].get_children("/dbarrier")) >= 2,
             "two members waiting")
    check_eq(entered, [], "nobody enters before the third member arrives")
    t3 = threading.Thread(target=member, args=(2,), daemon=True)
    t3.start()
    for t in threads + [t3]:
        t.join(30)
    check_eq((sorted(entered), sorted(left)), ([0, 1, 2], [0, 1, 2]), "all entered and left")
    for z in clients:
        z.stop()
        z.close()


RECIPES = {"lock": lock, "election": election, "counter": counter,
           "barrier": barrier, "double_barrier": double_barrier}

if len(sys.argv) < 3 or sys.argv[2] not in RECIPES:
    sys.exit("usage: recipes.py HOST:PORT {%s}" % ",".join(RECIPES))
RECIPES[sys.argv[2]]()
print("%s: all checks passed" % sys.argv[2])
