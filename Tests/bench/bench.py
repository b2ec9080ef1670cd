#!/usr/bin/env python3
"""Proxenos benchmarks: ours against the reference in the same QEMU run,
reported as ratios (ours / reference), never as absolute pass/fail times.

    bench.py --iso build/bench.iso [--only create] [--runs 3]

Scenario `blk`: the demo guest's disk throughput on our blkback against the
kernel's xen-blkback (see blk()).

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


# The guest's result line (initramfs/demo/init, proxenos.blkbench).
BLKBENCH = re.compile(
    r"proxenos-blkbench: status=(\d+) write=([0-9.]+) read=([0-9.]+) read4k=([0-9.]+)")


def blk_guest(vm, name, create, between, destroy):
    """Creates a paused guest, runs `between` (a format string given the
    domid), unpauses it and waits for its throughput line; returns the
    seconds of (64 MiB write, 64 MiB read, 8 MiB of 4 KiB reads)."""
    log = "/var/log/xen/console/guest-%s.log" % name
    vm.run("rm -f %s" % log)
    _, out = vm.run(create, timeout=400)
    match = re.search(r"Started domain %s \(id (\d+)\)" % name, out)
    if not match:
        raise Failure("%s said %r" % (create, out))
    domid = int(match.group(1))
    if between:
        vm.run(between.format(domid=domid), timeout=60)
    vm.run("xm unpause %s" % name)
    _, out = vm.run(
        "i=0; until grep -a -q 'proxenos-blkbench:' %s 2>/dev/null; do i=$((i+1)); "
        "[ $i -gt 1800 ] && break; sleep 0.5; done; grep -a 'proxenos-blkbench:' %s"
        % (log, log), timeout=1000, check=False)
    vm.run(destroy, timeout=120)
    result = BLKBENCH.search(out)
    if not result or result.group(1) != "000":
        raise Failure("%s: no clean throughput line: %r" % (name, out[-300:]))
    return tuple(float(result.group(i)) for i in (2, 3, 4))


@bench("blk")
def blk(session, runs):
    """The demo guest's disk throughput on our blkback against the kernel's
    xen-blkback, on the same loop device over tmpfs: 64 MiB written and read
    in 1 MiB O_DIRECT blocks, 8 MiB read in 4 KiB blocks. The reference run
    stops our blkback (SIGSTOP: PID 1 must not respawn it and its announce
    node stays valid for xend), loads xen-blkback and writes the
    `physical-device` node that the kernel backend waits for (xl's block
    script does that). Ratios are reference time / our time: above 1 we are
    faster."""
    vm = session.vm
    work = "/mnt/blkbench"
    vm.run("mkdir -p %s && mount -t tmpfs -o size=160m blkbench %s && "
           "dd if=/dev/zero of=%s/disk.img bs=1M count=80 2>/dev/null" % (work, work, work),
           timeout=120)
    _, loop = vm.run("losetup -f")
    loop = loop.strip()
    vm.run("losetup %s %s/disk.img" % (loop, work))
    _, device = vm.run("stat -c '%%t:%%T' %s" % loop)
    vm.run("printf '%%s\\n' 'kernel = \"/usr/share/proxenos/demo/vmlinux.gz\"' "
           "'ramdisk = \"/usr/share/proxenos/demo/initrd.gz\"' 'memory = 128' "
           "'extra = \"console=hvc0 proxenos.blkbench\"' "
           "\"disk = ['phy:%s,xvda,w']\" > %s/bench.cfg" % (loop, work))
    ours, reference, other = [], [], []
    # A third variant per run, our blkback with other options (a second
    # blkback while the supervised one is stopped): BLK_VARIANT="--engine
    # synchronous" measures what io_uring buys, "--no-persistent-grants"
    # what persistent grants buy. BLK_ENGINES=1 is the former.
    variant_args = os.environ.get("BLK_VARIANT", "")
    if os.environ.get("BLK_ENGINES") == "1" and not variant_args:
        variant_args = "--engine synchronous"
    with_variant = bool(variant_args)
    for run in range(runs):
        def mine():
            name = "blkxm%d" % run
            ours.append(blk_guest(vm, name, "xm create -p %s/bench.cfg name=%s" % (work, name),
                                  None, "xm destroy %s" % name))

        def kernel():
            name = "blkkb%d" % run
            vm.run("kill -STOP $(pidof blkback) && modprobe xen-blkback")
            try:
                reference.append(blk_guest(
                    vm, name, "xm create -p %s/bench.cfg name=%s" % (work, name),
                    "proxenos xenstore write /local/domain/0/backend/vbd/{domid}/51712/"
                    "physical-device %s" % device.strip(), "xm destroy %s" % name))
            finally:
                vm.run("sleep 2; rmmod xen-blkback; kill -CONT $(pidof blkback)", check=False)

        def variant():
            # The variant: a second blkback with `variant_args` while the
            # supervised one is stopped (as for the kernel's); the announce
            # node is the supervised one's again afterwards.
            name = "blksy%d" % run
            vm.run("kill -STOP $(pidof blkback) && echo $(pidof blkback) > /tmp/blkback.pid && "
                   "(/usr/sbin/blkback %s >/var/log/xen/blkback-variant.log 2>&1 &) "
                   "&& sleep 2" % variant_args)
            try:
                other.append(blk_guest(vm, name, "xm create -p %s/bench.cfg name=%s" % (work, name),
                                      None, "xm destroy %s" % name))
            finally:
                vm.run("sleep 2; for p in $(pidof blkback); do [ $p = $(cat /tmp/blkback.pid) ] || "
                       "kill -TERM $p; done; sleep 1; kill -CONT $(cat /tmp/blkback.pid); "
                       "proxenos xenstore write /proxenos/backend/vbd $(cat /tmp/blkback.pid)",
                       check=False)

        steps = (mine, kernel, variant) if run % 2 == 0 else (variant, kernel, mine)
        for step in steps if with_variant else [s for s in steps if s is not variant]:
            step()
        print("bench: blk run %d: ours write %.2f s read %.2f s read4k %.2f s; "
              "kernel write %.2f s read %.2f s read4k %.2f s"
              % ((run + 1,) + ours[-1] + reference[-1]), flush=True)
        if with_variant:
            print(("bench: blk run %%d: blkback %s write %%.2f s read %%.2f s read4k %%.2f s"
                   % variant_args) % ((run + 1,) + other[-1]), flush=True)
    vm.run("losetup -d %s; umount %s" % (loop, work), check=False)
    for index, what in enumerate(("write", "read", "read4k")):
        mine = statistics.median(v[index] for v in ours)
        kernel = statistics.median(v[index] for v in reference)
        print("bench: blk %s medians: ours %.2f s, kernel xen-blkback %.2f s" % (what, mine, kernel))
        if with_variant:
            theirs = statistics.median(v[index] for v in other)
            print("bench: blk %s median, blkback %s: %.2f s (ratio %.2f)"
                  % (what, variant_args, theirs, kernel / theirs))
        print("ratio blk-%s %.2f" % (what, kernel / mine))


def main():
    parser = argparse.ArgumentParser(description="Proxenos benchmarks")
    parser.add_argument("--iso", default="build/bench.iso")
    parser.add_argument("--build", default="build")
    parser.add_argument("--qemu", default="qemu-system-x86_64 -machine q35 -cpu Nehalem,+rdrand "
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
