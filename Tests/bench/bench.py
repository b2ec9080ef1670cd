#!/usr/bin/env python3
"""Proxenos benchmarks: ours against the reference in the same QEMU run,
reported as ratios (ours / reference), never as absolute pass/fail times.

    bench.py --iso build/bench.iso [--only create] [--runs 3]

Scenario `create`: time from `xm create demo` to the guest's init marker
against Debian's `xl create` of the same config, alternating the two so
that neither gets the warmer caches. Times are taken inside dom0
(/proc/uptime), so the console's round trips do not count.
"""
import argparse
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "smoke"))

from smoke import Failure, Session, tail  # noqa: E402

BENCHES = {}


def bench(name):
    def register(function):
        BENCHES[name] = function
        return function
    return register


# Runs a create command, then waits (up to 240 s) for the guest's init
# marker in its console log; prints the seconds between the two and the
# seconds the create command itself took.
# In a subshell: its `exit 1` must not end the admin shell the console runs.
TIME_TO_MARKER = (
    "(rm -f /var/log/xen/console/guest-{name}.log; t0=$(cut -d' ' -f1 /proc/uptime); "
    "{create} >/tmp/bench-create.out 2>&1 || {{ cat /tmp/bench-create.out; exit 1; }}; "
    "tc=$(cut -d' ' -f1 /proc/uptime); "
    "i=0; until grep -q 'proxenos-demo: init reached' /var/log/xen/console/guest-{name}.log "
    "2>/dev/null; do i=$((i+1)); [ $i -gt 4800 ] && {{ echo no-marker; exit 1; }}; "
    "sleep 0.05; done; t1=$(cut -d' ' -f1 /proc/uptime); "
    "echo \"elapsed=$(echo \"$t1 $t0\" | awk '{{printf \"%.2f\", $1 - $2}}') "
    "command=$(echo \"$tc $t0\" | awk '{{printf \"%.2f\", $1 - $2}}')\")"
)


def time_to_marker(vm, name, create, destroy):
    """Returns (seconds to the init marker, seconds the create command took)."""
    _, out = vm.run(TIME_TO_MARKER.format(name=name, create=create), timeout=300)
    match = re.search(r"elapsed=([0-9.]+) command=([0-9.]+)", out)
    if not match:
        raise Failure("no time for %s: %r" % (create, out))
    vm.run(destroy, timeout=120)
    return float(match.group(1)), float(match.group(2))


@bench("create")
def create(session, runs):
    vm = session.vm
    vm.run("mkdir -p /var/lock /var/log/xen/console")
    ours, reference = [], []
    for run in range(runs):
        xm_name, xl_name = "benchxm%d" % run, "benchxl%d" % run
        xm = lambda: ours.append(time_to_marker(
            vm, xm_name, "xm create demo name=%s" % xm_name, "xm destroy %s" % xm_name))
        # xl's command-line settings are config syntax: strings quoted.
        xl = lambda: reference.append(time_to_marker(
            vm, xl_name, "xl create /etc/xen/demo 'name=\"%s\"'" % xl_name,
            "xl destroy %s" % xl_name))
        # Alternate which goes first, so that neither always meets the
        # colder caches.
        for step in ((xm, xl) if run % 2 == 0 else (xl, xm)):
            step()
        print("bench: create run %d: xm %.2f s (command %.2f s), xl %.2f s (command %.2f s)"
              % (run + 1, ours[-1][0], ours[-1][1], reference[-1][0], reference[-1][1]),
              flush=True)
    median = lambda values, i: statistics.median(v[i] for v in values)
    print("bench: create-latency medians: xm %.2f s, xl %.2f s over %d runs each"
          % (median(ours, 0), median(reference, 0), runs))
    print("bench: create command medians: xm %.2f s, xl %.2f s"
          % (median(ours, 1), median(reference, 1)))
    print("ratio create-command %.2f" % (median(ours, 1) / median(reference, 1)))
    print("ratio create-latency %.2f" % (median(ours, 0) / median(reference, 0)))


def main():
    parser = argparse.ArgumentParser(description="Proxenos benchmarks")
    parser.add_argument("--iso", default="build/bench.iso")
    parser.add_argument("--build", default="build")
    parser.add_argument("--qemu", default="qemu-system-x86_64 -machine q35 -cpu Nehalem "
                        "-smp 2 -m 2048 -no-reboot -netdev user,id=net0,restrict=on "
                        "-device e1000,netdev=net0")
    parser.add_argument("--timeout", type=int, default=2400)
    parser.add_argument("--boot-timeout", type=int, default=300)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--only")
    args = parser.parse_args()
    names = list(BENCHES) if not args.only else args.only.split(",")
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print("bench: unknown benchmark(s) %s; known: %s" % (", ".join(unknown), ", ".join(BENCHES)))
        return 2
    session = Session(args, "bench", args.iso)
    try:
        session.boot()
        for name in names:
            BENCHES[name](session, args.runs)
        session.power_off()
    except Failure as failure:
        print("bench: FAIL: %s" % failure)
        print("bench: serial log kept at %s; its tail:" % session.log_path)
        session.vm.close()
        print(tail(session.log_path))
        return 1
    session.vm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
