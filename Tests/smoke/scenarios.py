"""The smoke scenarios. Each takes a booted Session (see smoke.py) and raises
Failure when a check does not hold."""
from smoke import Failure, scenario


def expect_equal(what, actual, expected):
    if actual != expected:
        raise Failure("%s: expected %r, got %r" % (what, expected, actual))


# A shell snippet that prints seconds since boot with two decimals.
UPTIME = "cut -d' ' -f1 /proc/uptime"


@scenario("boot")
def boot(session):
    """The banner appeared (Session.boot), xenstore names dom0 Domain-0, a
    supervised service killed with SIGKILL is back within 5 s; the session's
    power-off checks the clean shutdown."""
    vm = session.vm
    _, name = vm.run("proxenos xenstore read /local/domain/0/name")
    expect_equal("/local/domain/0/name", name.strip(), "Domain-0")

    service = "xenconsoled"
    _, old = vm.run("pidof %s" % service)
    old = old.strip()
    if not old.isdigit():
        raise Failure("%s is not running (pidof said %r)" % (service, old))
    # Measured inside the appliance: the console round trip is slow under TCG.
    _, out = vm.run(
        "t0=$(%s); kill -9 %s; n=; while [ -z \"$n\" ] || [ \"$n\" = %s ]; do "
        "n=$(pidof %s); t=$(%s); "
        "[ $(echo \"$t $t0\" | awk '{print ($1 - $2 > 20)}') = 1 ] && break; sleep 0.05; done; "
        "echo \"new=$n after=$(echo \"$t $t0\" | awk '{printf \"%%.2f\", $1 - $2}')\""
        % (UPTIME, old, old, service, UPTIME), timeout=60)
    fields = dict(f.split("=", 1) for f in out.split() if "=" in f)
    new, after = fields.get("new", ""), float(fields.get("after", "99"))
    if not new.isdigit() or new == old:
        raise Failure("%s did not come back after SIGKILL: %r" % (service, out))
    if after > 5.0:
        raise Failure("%s came back after %.2f s, more than 5 s" % (service, after))
    print("smoke: boot: %s back after %.2f s with pid %s" % (service, after, new))


@scenario("xenstore")
def xenstore(session):
    """`proxenos xenstore` write/read/ls/rm and a watch that sees a write,
    against Debian's real xenstored."""
    vm = session.vm
    xs = "proxenos xenstore"
    vm.run("%s write /tool/smoke/greeting 'hello xen'" % xs)
    _, value = vm.run("%s read /tool/smoke/greeting" % xs)
    expect_equal("read back", value.strip(), "hello xen")
    vm.run("%s write /tool/smoke/list/b 2 && %s write /tool/smoke/list/a 1" % (xs, xs))
    _, listing = vm.run("%s ls /tool/smoke/list" % xs)
    lines = [l.strip() for l in listing.splitlines() if l.strip()]
    expect_equal("ls", sorted(lines), ['a = "1"', 'b = "2"'])

    # The watch fires once when set up and once for the write below it.
    _, out = vm.run(
        "%s watch --count 2 /tool/smoke/watched > /tmp/watch.out 2>&1 & w=$!; "
        "i=0; while [ ! -s /tmp/watch.out ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; "
        "%s write /tool/smoke/watched/child yes; wait $w; echo status=$?; cat /tmp/watch.out"
        % (xs, xs), timeout=90)
    lines = [l.strip() for l in out.splitlines() if l.strip()]
    if "status=0" not in lines:
        raise Failure("the watch did not end normally: %r" % out)
    if "/tool/smoke/watched/child" not in lines:
        raise Failure("the watch did not see the write: %r" % out)

    vm.run("%s rm /tool/smoke" % xs)
    status, out = vm.run("%s read /tool/smoke/greeting" % xs, check=False)
    if status == 0:
        raise Failure("/tool/smoke/greeting still readable after rm: %r" % out)
    if "/tool/smoke/greeting" not in out:
        raise Failure("the error does not name the missing path: %r" % out)
