"""docker-py lifecycle calls against a real berthd (driven by tests/sdk_lifecycle.rs).

argv: BASE_URL IMAGE_TAR. Prints "ok" at the end; any failed assertion exits non-zero.
"""
import sys
import threading
import time

import docker
from docker import errors

base, image_tar = sys.argv[1], sys.argv[2]
c = docker.DockerClient(base_url=base, version="auto")
api = c.api
NET = {"network_mode": "none"}


def expect(exc, status, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except exc as e:
        if status is not None:
            assert e.status_code == status, (e.status_code, str(e))
        return e
    raise AssertionError(f"{fn.__name__}{a} did not raise {exc.__name__}")


start = int(time.time())

# info / version / df
v = c.version()
assert v["ApiVersion"] == "1.47" and v["Os"] == "linux", v
info = c.info()
assert info["Driver"] == "overlay2" and info["CgroupDriver"] == "cgroupfs", info
assert info["Images"] == 0, info["Images"]

# images.load (the busybox rootfs imported through the API, saved, loaded back)
with open(image_tar, "rb") as f:
    api.import_image_from_data(f.read(), repository="busybox", tag="latest")
img = c.images.get("busybox:latest")
saved = b"".join(img.save(named=True))
img.tag("berth-test/sdk", "1")
assert sorted(c.images.get("busybox").tags) == ["berth-test/sdk:1", "busybox:latest"]
c.images.remove("berth-test/sdk:1")
c.images.remove("busybox:latest")
expect(errors.ImageNotFound, 404, c.images.get, "busybox")
loaded = c.images.load(saved)
assert [i.tags for i in loaded] == [["busybox:latest"]], [i.tags for i in loaded]
assert [i.tags for i in c.images.list()] == [["busybox:latest"]]
assert c.images.list(name="nothing-like-this") == []
hist = c.images.get("busybox").history()
assert len(hist) >= 1 and "Created" in hist[0] and "CreatedBy" in hist[0], hist

# containers.run, not detached: output, exit codes as ContainerError
assert c.containers.run("busybox", ["echo", "hi"], remove=True, **NET) == b"hi\n"
e = expect(errors.ContainerError, None, c.containers.run, "busybox",
           ["sh", "-c", "echo bad >&2; exit 3"], remove=True, **NET)
assert e.exit_status == 3 and b"bad" in e.stderr, (e.exit_status, e.stderr)
# run tries to pull a missing image; berthd has no registry client and says how to load one
e = expect(errors.APIError, 501, c.containers.run, "berth-test-nope:1", "true", **NET)
assert "berth load" in str(e), str(e)

# create / start / inspect attrs / stop / restart / kill / wait
ct = c.containers.create("busybox", ["sh", "-c", "echo started; trap 'exit 7' TERM; while :; do sleep 0.05; done"],
                         name="berth-test-py", labels={"app": "py"}, environment={"K": "V"},
                         working_dir="/tmp", mem_limit="64m", **NET)
assert ct.status == "created"
a = ct.attrs
assert a["Name"] == "/berth-test-py" and a["Config"]["Labels"] == {"app": "py"}, a["Config"]
assert "K=V" in a["Config"]["Env"] and a["Config"]["WorkingDir"] == "/tmp"
assert a["HostConfig"]["Memory"] == 64 << 20
ct.start()
ct.reload()
assert ct.status == "running" and ct.attrs["State"]["Pid"] > 0
expect(errors.APIError, 409, c.containers.create, "busybox", "true", name="berth-test-py", **NET)
expect(errors.APIError, 409, ct.remove)
ct.stop(timeout=5)
assert ct.wait()["StatusCode"] == 7
ct.reload()
assert ct.attrs["State"]["ExitCode"] == 7 and ct.attrs["State"]["FinishedAt"] != "0001-01-01T00:00:00Z"
ct.restart(timeout=1)
ct.reload()
assert ct.status == "running"
ct.kill(signal="SIGKILL")
assert ct.wait()["StatusCode"] == 137
expect(errors.APIError, 409, ct.kill)

# logs: whole, stdout/stderr split, stream + follow, tail, since
lg = c.containers.run("busybox", ["sh", "-c", "echo a; echo b >&2; echo c; sleep 1000"],
                      detach=True, name="berth-test-logs", **NET)
deadline = time.time() + 10
while b"c" not in lg.logs() and time.time() < deadline:
    time.sleep(0.02)
# stdout and stderr are separate pipes: their relative order is not defined (as in Docker)
assert sorted(lg.logs().splitlines()) == [b"a", b"b", b"c"], lg.logs()
assert lg.logs(stderr=False) == b"a\nc\n"
assert lg.logs(stdout=False) == b"b\n"
assert lg.logs(tail=1) in (b"b\n", b"c\n")
assert len(lg.logs(tail=2).splitlines()) == 2
assert lg.logs(since=int(time.time()) + 100) == b""
ts = lg.logs(timestamps=True, tail=1).decode()
assert ts.endswith(("Z b\n", "Z c\n")) and len(ts) == len("2026-01-01T00:00:00.000000000Z c\n"), ts
# attach with logs=1 replays the output so far (and with stream=0 ends there); with neither
# logs nor stream it answers nothing (docker-py's default attach())
got = lg.attach(logs=True)
assert sorted(got.splitlines()) == [b"a", b"b", b"c"], got
assert lg.attach(logs=True, stderr=False) == b"a\nc\n"
assert lg.attach() == b""
chunks = []
stream = lg.logs(stream=True, follow=True)


def reader():
    for ch in stream:
        chunks.append(ch)


t = threading.Thread(target=reader)
t.start()
time.sleep(0.2)
lg.kill()
t.join(10)
assert not t.is_alive(), "logs follow did not end when the container stopped"
assert sorted(b"".join(chunks).splitlines()) == [b"a", b"b", b"c"], chunks

# list with filters, rename
names = lambda **kw: sorted(x.name for x in c.containers.list(**kw))
assert names() == [], names()
assert names(all=True) == ["berth-test-logs", "berth-test-py"]
assert names(all=True, filters={"label": "app=py"}) == ["berth-test-py"]
assert names(all=True, filters={"exited": 137}) == ["berth-test-logs", "berth-test-py"]
assert names(all=True, filters={"name": "logs"}) == ["berth-test-logs"]
assert names(all=True, filters={"ancestor": "busybox"}) == ["berth-test-logs", "berth-test-py"]
assert len(c.containers.list(all=True, limit=1)) == 1
expect(errors.APIError, 400, c.containers.list, filters={"bogus": "x"})
ct.rename("berth-test-py2")
ct.reload()
assert ct.name == "berth-test-py2"
expect(errors.NotFound, 404, c.containers.get, "berth-test-py")
expect(errors.APIError, 409, ct.rename, "berth-test-logs")
expect(errors.APIError, 400, ct.rename, "bad name!")

# df
df = c.df()
assert len(df["Containers"]) == 2 and len(df["Images"]) == 1, df
assert df["LayersSize"] > 0

# remove, prune
ct.remove()
expect(errors.NotFound, 404, ct.reload)
expect(errors.NotFound, 404, api.remove_container, "berth-test-py2")
r = c.containers.prune()
assert len(r["ContainersDeleted"]) == 1, r
assert c.containers.list(all=True) == []

# events with filters, since/until
until = int(time.time()) + 1
evs = list(api.events(since=start, until=until, decode=True,
                      filters={"type": "container", "event": "die"}))
assert evs and all(e["Type"] == "container" and e["Action"] == "die" for e in evs), evs
assert any(e["Actor"]["Attributes"].get("name") == "berth-test-logs" for e in evs), evs
imgs = list(api.events(since=start, until=until, decode=True, filters={"type": "image"}))
acts = {e["Action"] for e in imgs}
assert {"import", "tag", "untag", "delete", "load"} <= acts, acts

# bad input: APIError with the status code
expect(errors.APIError, 400, api.create_container, "busybox", "true", name="-bad", host_config=api.create_host_config(network_mode="none"))
expect(errors.NotFound, 404, api.start, "berth-test-nothing")
img = c.images.get("busybox")
c.images.remove(img.id)
assert c.images.list() == []
print("ok")
