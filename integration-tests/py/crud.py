"""kazoo CRUD, versions, sequential naming and ensure_path against the server at argv[1]."""

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError, NotEmptyError

from zkcommon import check, check_eq, check_raises, connect

zk = connect()

zk.create("/k", b"v0")
data, stat = zk.get("/k")
check_eq((data, stat.version, stat.numChildren), (b"v0", 0, 0), "create then get")
check_raises(NodeExistsError, lambda: zk.create("/k", b""), "duplicate create")
check_raises(NoNodeError, lambda: zk.create("/missing/child", b""), "create under missing parent")
check_raises(NoNodeError, lambda: zk.get("/missing"), "get missing")

stat = zk.set("/k", b"v1")
check_eq(stat.version, 1, "set bumps version")
check_raises(BadVersionError, lambda: zk.set("/k", b"x", version=0), "set with stale version")
check_raises(BadVersionError, lambda: zk.delete("/k", version=5), "delete with wrong version")
check_eq(zk.get("/k")[0], b"v1", "failed set wrote nothing")
zk.set("/k", b"v2", version=1)
check_eq(zk.get("/k")[1].version, 2, "set with right version")

zk.ensure_path("/deep/er/path")
check(zk.exists("/deep/er/path") is not None, "ensure_path creates ancestors")
check_raises(NotEmptyError, lambda: zk.delete("/deep"), "delete non-empty")
zk.delete("/deep", recursive=True)
check(zk.exists("/deep") is None, "recursive delete")

zk.create("/seq")
names = [zk.create("/seq/job-", b"", sequence=True) for _ in range(3)]
check_eq(names, ["/seq/job-0000000000", "/seq/job-0000000001", "/seq/job-0000000002"],
         "sequential names are %010d of the parent's child-creation counter")
zk.delete(names[0])
nxt = zk.create("/seq/job-", b"", sequence=True, ephemeral=True)
check_eq(nxt, "/seq/job-0000000003", "deletes do not reuse or skip sequence numbers")
children, stat = zk.get_children("/seq", include_data=True)
check_eq(sorted(children), ["job-0000000001", "job-0000000002", "job-0000000003"], "children listed")
check_eq((stat.cversion, stat.numChildren), (5, 3), "parent cversion counts creates and deletes")

path, stat = zk.create("/withstat", b"abc", include_data=True)
check_eq((path, stat.dataLength, stat.version), ("/withstat", 3, 0), "create2 returns stat")
check_eq(zk.exists("/withstat").mzxid, stat.czxid, "exists returns the same stat")

zk.stop()
zk.close()
print("crud: all checks passed")
