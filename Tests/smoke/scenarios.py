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
