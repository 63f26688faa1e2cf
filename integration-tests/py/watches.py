"""kazoo DataWatch, ChildrenWatch and one-shot watches against the server at argv[1]."""

import threading

from zkcommon import check_eq, connect, wait_for

zk = connect()
other = connect()

zk.create("/dw", b"a")
seen = []
lock = threading.Lock()


@zk.DataWatch("/dw")
def on_data(data, stat):
    with lock:
        seen.append(data)


wait_for(lambda: seen == [b"a"], "DataWatch called with initial data")
other.set("/dw", b"b")
wait_for(lambda: seen == [b"a", b"b"], "DataWatch sees the change")
other.set("/dw", b"c")
wait_for(lambda: seen == [b"a", b"b", b"c"], "DataWatch re-arms")
other.delete("/dw")
wait_for(lambda: seen[-1:] == [None], "DataWatch sees deletion as None")

zk.create("/cw")
kids = []


@zk.ChildrenWatch("/cw")
def on_children(children):
    with lock:
        kids.append(sorted(children))


wait_for(lambda: kids == [[]], "ChildrenWatch called with initial children")
other.create("/cw/a")
wait_for(lambda: kids[-1:] == [["a"]], "ChildrenWatch sees a create")
other.create("/cw/b", ephemeral=True)
wait_for(lambda: kids[-1:] == [["a", "b"]], "ChildrenWatch sees an ephemeral create")
other.set("/cw/a", b"data")
other.delete("/cw/a")
wait_for(lambda: kids[-1:] == [["b"]], "ChildrenWatch sees a delete")
other.stop()
other.close()
wait_for(lambda: kids[-1:] == [[]], "ChildrenWatch sees ephemeral removal when its session closes")
check_eq([k for k in kids if k == ["a", "b", "x"]], [], "no phantom children")

events = []
zk.create("/once", b"")
zk.get("/once", watch=lambda e: events.append((e.type, e.path)))
zk.set("/once", b"1")
zk.set("/once", b"2")
zk.sync("/once")
zk.exists("/once")
wait_for(lambda: events == [("CHANGED", "/once")], "one-shot data watch fired once")
zk.get_children("/once", watch=lambda e: events.append((e.type, e.path)))
zk.create("/once/kid")
wait_for(lambda: events[-1] == ("CHILD", "/once"), "one-shot child watch fired")
zk.exists("/nothere", watch=lambda e: events.append((e.type, e.path)))
zk.create("/nothere")
wait_for(lambda: events[-1] == ("CREATED", "/nothere"), "exists watch fired on create")

zk.stop()
zk.close()
print("watches: all checks passed")
