"""kazoo transactions: all-or-nothing, and ZooKeeper's per-op results on failure."""

from kazoo.exceptions import BadVersionError, NoNodeError, RolledBackError, RuntimeInconsistency

from zkcommon import check, check_eq, connect

zk = connect()
zk.create("/tx")
zk.create("/tx/x", b"0")

t = zk.transaction()
t.create("/tx/a", b"A")
t.set_data("/tx/x", b"1", version=0)
t.check("/tx/x", 1)
t.delete("/tx/a")
t.create("/tx/s-", b"", sequence=True)
results = t.commit()
check_eq(results[0], "/tx/a", "create result is the path")
check_eq(results[1].version, 1, "set result is the new stat")
check_eq(results[2:4], [True, True], "check and delete results")
check_eq(results[4], "/tx/s-0000000002", "sequential create inside a transaction")
check_eq(zk.get("/tx/x")[0], b"1", "committed set is visible")

t = zk.transaction()
t.create("/tx/b", b"B")
t.set_data("/tx/x", b"2", version=0)
t.delete("/tx/x")
results = t.commit()
kinds = [type(r) for r in results]
check_eq(kinds, [RolledBackError, BadVersionError, RuntimeInconsistency],
         "failed transaction: earlier ops rolled back, failing op's error, later ops inconsistent")
check(zk.exists("/tx/b") is None, "rolled-back create not visible")
data, stat = zk.get("/tx/x")
check_eq((data, stat.version), (b"1", 1), "rolled-back set not visible")

t = zk.transaction()
t.check("/tx/nope", 0)
t.create("/tx/c", b"")
results = t.commit()
check_eq([type(r) for r in results], [NoNodeError, RuntimeInconsistency], "failing first op")
check(zk.exists("/tx/c") is None, "nothing created")

zk.stop()
zk.close()
print("transactions: all checks passed")
