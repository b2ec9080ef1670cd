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
    # Measured inside the appliance (the console round trip is slow under
    # TCG), with nothing but pidof in the loop so the loop itself adds little.
    _, out = vm.run(
        "t0=$(%s); kill -9 %s; i=0; n=; "
        "while [ $i -lt 3000 ]; do n=$(pidof %s); "
        "[ -n \"$n\" ] && [ \"$n\" != %s ] && break; i=$((i+1)); done; "
        "t=$(%s); echo \"new=$n after=$(echo \"$t $t0\" | awk '{printf \"%%.2f\", $1 - $2}')\""
        % (UPTIME, old, service, old, UPTIME), timeout=120)
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


STUB_OK = r"bootstub: module %d %s \S+ \d+ bytes: sha256 ok"


@scenario("selftest")
def selftest(session):
    """`proxenos selftest` in dom0: event-channel loopback, a gntalloc
    self-grant mapped and copied, a million echo requests through real grants
    and event channels on the DataPath worker, and a million more with the
    echo backend process killed (SIGKILL) and restarted twice part-way: every
    request answered exactly once. Its lines go to the smoke log."""
    import re
    vm = session.vm
    status, out = vm.run("proxenos selftest 2>&1", timeout=1500, check=False)
    for line in out.splitlines():
        if line.startswith("selftest:"):
            print("smoke: %s" % line.strip(), flush=True)
    if status != 0:
        raise Failure("proxenos selftest exited with %d:\n%s" % (status, out))
    for check in ["event-channel loopback", "grant self-map and copy", "echo ring",
                  "echo ring across backend restarts"]:
        if not re.search(r"^selftest: %s: ok \(" % re.escape(check), out, re.M):
            raise Failure("selftest did not pass %r:\n%s" % (check, out))
    if not re.search(r"^selftest: 4 passed, 0 failed$", out, re.M):
        raise Failure("selftest's summary is not 4 passed, 0 failed:\n%s" % out)
    for path in ["/local/domain/0/backend/echo", "/local/domain/0/device/echo"]:
        status, left = vm.run("proxenos xenstore ls %s" % path, check=False)
        if status == 0:
            raise Failure("selftest left %s in xenstore: %r" % (path, left))


@scenario("stub")
def stub(session):
    """The default GRUB entry went through the boot stub: its report lines
    are in the serial log before Xen's banner."""
    log = session.vm.text()
    checks = [
        (r"bootstub: Proxenos boot stub, entered through multiboot2", "the stub's greeting"),
        (r"bootstub: cpu \S+ \".*\" family \d+ model \d+", "the CPU report"),
        (r"bootstub: VT-x (absent|present)", "the VT-x report"),
        (r"bootstub: AMD-V (absent|present)", "the AMD-V report"),
        (r"bootstub: memory \d+ MiB usable", "the memory report"),
        (STUB_OK % (0, "xen"), "Xen's verdict"),
        (STUB_OK % (1, "dom0-kernel"), "the dom0 kernel's verdict"),
        (STUB_OK % (2, "initrd"), "the initramfs's verdict"),
        (r"bootstub: checked \d+ KiB in \d+ ms", "the time the checks took"),
        (r"bootstub: jumping to xen at 0x[0-9a-f]+ .* (\d+) ms", "the hand-off"),
    ]
    import re
    for pattern, what in checks:
        if not re.search(pattern, log):
            raise Failure("no %s in the serial log (/%s/)" % (what, pattern))
    jump = re.search(r"bootstub: jumping to xen .*, (\d+) ms", log)
    stub_at = log.find("bootstub: jumping to xen")
    xen_at = log.find("Xen version")
    if xen_at < stub_at:
        raise Failure("Xen's banner does not follow the stub's hand-off")
    print("smoke: stub: entry to Xen in %s ms" % (jump.group(1) if jump else "?"))


def session_stub_tamper(args):
    """A copy of the ISO with one byte of the initramfs flipped."""
    import os
    import re
    import shutil
    import subprocess
    tampered = os.path.join(args.build, "smoke", "tampered.iso")
    os.makedirs(os.path.dirname(tampered), exist_ok=True)
    shutil.copyfile(args.iso, tampered)
    report = subprocess.run(
        ["xorriso", "-indev", args.iso, "-find", "/boot/initrd", "-exec", "report_lba", "--"],
        capture_output=True, text=True)
    match = re.search(r"File data lba:\s*\d+\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)",
                      report.stdout + report.stderr)
    if not match:
        raise Failure("could not locate /boot/initrd in the ISO: %s" % report.stderr[-500:])
    lba, blocks, size = (int(g) for g in match.groups())
    offset = lba * 2048 + size // 2
    with open(tampered, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))
    return tampered


def no_shell(function):
    function.needs_shell = False
    return function


@scenario("stub-tamper", session="stub-tamper")
@no_shell
def stub_tamper(session):
    """One flipped byte of the initramfs: the stub names the initramfs,
    prints both digests, and halts; Xen never starts."""
    vm = session.vm
    vm.expect(r"bootstub: MISMATCH module 2 initrd", 240, "the stub naming the initramfs")
    expected = vm.expect(r"expected sha256 ([0-9a-f]{64})", 10, "the expected digest")
    actual = vm.expect(r"actual   sha256 ([0-9a-f]{64})", 10, "the actual digest")
    if expected.group(1) == actual.group(1):
        raise Failure("the two digests are equal")
    vm.expect(r"bootstub: REFUSING TO BOOT", 30, "the refusal")
    vm.expect(r"bootstub: halted", 30, "the halt")
    # Halted means halted: nothing more reaches the serial line, Xen least.
    import time
    time.sleep(10)
    if "Xen version" in vm.text() or "(XEN)" in vm.text():
        raise Failure("Xen started after the stub refused to boot")


# ---------------------------------------------------------------- lifecycle

import re
import time

GUEST_LOG = "/var/log/xen/console/guest-%s.log"


def wait_until(vm, command, done, timeout, what, pause=3):
    """Runs `command` until done(status, output) holds or `timeout` seconds
    pass; returns the last output."""
    deadline = time.monotonic() + timeout
    while True:
        status, out = vm.run(command, timeout=120, check=False)
        if done(status, out):
            return out
        if time.monotonic() > deadline:
            raise Failure("timed out after %d s waiting for %s (last output %r)"
                          % (timeout, what, out[-300:]))
        time.sleep(pause)


def list_row(vm, name):
    """(domid, state) of a domain from `xm list NAME`, or None if xm says
    it does not exist."""
    status, out = vm.run("xm list %s 2>&1" % name, check=False)
    if status != 0:
        if "no domain" not in out:
            raise Failure("xm list %s failed unexpectedly: %r" % (name, out))
        return None
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 6 and fields[0] == name:
            return int(fields[1]), fields[4]
    raise Failure("xm list %s printed no row for it: %r" % (name, out))


def last_tick(vm, name):
    """The number of the demo guest's last console tick (-1 if none yet)."""
    _, out = vm.run("grep -a 'proxenos-demo: tick' %s | tail -1" % (GUEST_LOG % name),
                    check=False)
    match = re.search(r"tick (\d+)", out)
    return int(match.group(1)) if match else -1


def expect_gone(vm, name):
    if list_row(vm, name) is not None:
        raise Failure("%s is still listed by xm list" % name)


@scenario("lifecycle", session="lifecycle")
def lifecycle(session):
    """The seed's xm commands on the demo guest: create from /etc/xen/demo,
    console, list states, pause/unpause, save/restore, shutdown -w, a guest
    that crashes itself restarted by on_crash, destroy without leftovers, a
    malformed config refused with its line number."""
    vm = session.vm
    _, out = vm.run("xm list")
    if not re.search(r"^Name +ID +Mem +VCPUs +State +Time\(s\)$", out, re.M):
        raise Failure("xm list has no classic header: %r" % out)
    if not re.search(r"^Domain-0 +0 +\d+ +\d+ +r----- +\d+\.\d$", out, re.M):
        raise Failure("xm list shows no running Domain-0: %r" % out)

    t0 = time.monotonic()
    _, out = vm.run("xm create demo", timeout=400)
    if "Started domain demo" not in out:
        raise Failure("xm create demo said %r" % out)
    created = time.monotonic() - t0
    wait_until(vm, "grep -a -m1 'proxenos-demo: init reached' %s" % (GUEST_LOG % "demo"),
               lambda s, o: s == 0, 600, "the demo guest's init marker")
    print("smoke: lifecycle: xm create %.1f s, init marker after %.1f s"
          % (created, time.monotonic() - t0), flush=True)

    # xm console: the ticks appear on our terminal; Ctrl-] detaches.
    vm.send("xm console demo\n")
    vm.expect(r"proxenos-demo: tick \d+", 120, "a tick through xm console")
    vm.send("\x1d")
    vm.run("true", timeout=60)

    # A vCPU that is runnable but waiting for a physical CPU is neither
    # running nor blocked (------), as with xm; under TCG dom0 often holds
    # both CPUs while xm list runs, so a few samples are taken.
    wait_until(vm, "xm list demo",
               lambda s, o: s == 0 and re.search(r"^demo +\d+ +\d+ +\d+ +(r.|.b)", o, re.M)
               is not None, 60, "xm list to show demo running (r) or blocked (b)", pause=1)

    vm.run("xm pause demo")
    _, state = list_row(vm, "demo")
    if state[2] != "p":
        raise Failure("paused demo shows state %s" % state)
    before = last_tick(vm, "demo")
    vm.run("sleep 10", timeout=120)
    after = last_tick(vm, "demo")
    if after != before:
        raise Failure("a paused guest ticked on: %d -> %d" % (before, after))
    vm.run("xm unpause demo")
    wait_until(vm, "grep -a 'proxenos-demo: tick' %s | tail -1" % (GUEST_LOG % "demo"),
               lambda s, o: last_tick_of(o) > after, 180, "ticks after unpause")
    _, state = list_row(vm, "demo")
    if state[2] != "-":
        raise Failure("unpaused demo still shows state %s" % state)

    t0 = time.monotonic()
    vm.run("xm save demo /var/lib/xen/save/demo", timeout=600)
    saved = time.monotonic() - t0
    expect_gone(vm, "demo")
    vm.run("test -s /var/lib/xen/save/demo")
    before = last_tick(vm, "demo")
    t0 = time.monotonic()
    _, out = vm.run("xm restore /var/lib/xen/save/demo", timeout=600)
    restored = time.monotonic() - t0
    if list_row(vm, "demo") is None:
        raise Failure("demo is not back after xm restore: %r" % out)
    wait_until(vm, "grep -a 'proxenos-demo: tick' %s | tail -1" % (GUEST_LOG % "demo"),
               lambda s, o: last_tick_of(o) > before, 180, "ticks after restore")
    print("smoke: lifecycle: xm save %.1f s, xm restore %.1f s" % (saved, restored), flush=True)

    # xend restarts (PID 1 respawns it) and adopts the running guest.
    domid, _ = list_row(vm, "demo")
    vm.run("kill -9 $(pidof xend)")
    wait_until(vm, "xm list demo 2>&1", lambda s, o: s == 0, 120, "xend back after SIGKILL")
    again, _ = list_row(vm, "demo")
    if again != domid:
        raise Failure("after xend's restart demo is domain %d, was %d" % (again, domid))
    before = last_tick(vm, "demo")
    wait_until(vm, "grep -a 'proxenos-demo: tick' %s | tail -1" % (GUEST_LOG % "demo"),
               lambda s, o: last_tick_of(o) > before, 180, "ticks after xend's restart")

    console_flood(vm)

    t0 = time.monotonic()
    vm.run("xm shutdown -w demo", timeout=600)
    print("smoke: lifecycle: xm shutdown -w %.1f s" % (time.monotonic() - t0), flush=True)
    expect_gone(vm, "demo")

    # A guest that crashes itself 5 s after its init runs; on_crash=restart.
    vm.run("xm create demo name=crashy 'extra=console=hvc0 proxenos.crash=5' on_crash=restart",
           timeout=400)
    first, _ = list_row(vm, "crashy")
    wait_until(vm, "xm list crashy 2>&1",
               lambda s, o: s == 0 and re.search(r"^crashy +(\d+) ", o, re.M) is not None
               and int(re.search(r"^crashy +(\d+) ", o, re.M).group(1)) != first,
               900, "crashy to crash and be restarted")
    second, _ = list_row(vm, "crashy")
    print("smoke: lifecycle: crashy restarted as domain %d (was %d)" % (second, first), flush=True)
    _, vm_path = vm.run("proxenos xenstore read /local/domain/%d/vm" % second)
    vm.run("xm destroy crashy", timeout=120)
    expect_gone(vm, "crashy")
    for path in ["/local/domain/%d" % second, "/local/domain/0/backend/vbd/%d" % second,
                 "/local/domain/0/backend/vif/%d" % second, vm_path.strip(),
                 "/proxenos/xend/domain/%d" % second, "/local/domain/%d" % first]:
        status, out = vm.run("proxenos xenstore ls %s 2>&1" % path, check=False)
        if status == 0:
            raise Failure("xenstore still has %s after xm destroy: %r" % (path, out))

    # A malformed config: refused with its file and line, nothing created.
    vm.run("printf 'kernel = \"/usr/share/proxenos/demo/vmlinux.gz\"\\nmemory = 128\\n"
           "name = \"broken\\n' > /tmp/broken")
    status, out = vm.run("xm create /tmp/broken 2>&1", check=False)
    if status == 0 or "/tmp/broken:3" not in out:
        raise Failure("a malformed config gave status %d and %r" % (status, out))
    _, out = vm.run("xm list")
    rows = [line.split()[0] for line in out.splitlines()[1:] if line.strip()]
    expect_equal("domains after the malformed config", rows, ["Domain-0"])


def console_flood(vm):
    """A guest writing to its console without pause fills only the guest
    logs' own file system: xenconsoled and xend keep serving, /var keeps its
    room and does not grow, nothing floods dom0's console, and the demo guest
    runs on (its ticks reach its log again once the flood is gone). The file system is filled to its last
    256 KiB first, as a flood under TCG (about 30 KB/s) takes minutes."""
    logs = "/var/log/xen/console"
    vm.run("size=$(df -k %s | awk 'NR==2 {print $4}'); "
           "dd if=/dev/zero of=%s/filler bs=1k count=$((size - 256)) 2>/dev/null" % (logs, logs))
    mark = len(vm.buffer)
    vm.run("xm create demo name=flood 'extra=console=hvc0 proxenos.flood'", timeout=400)
    wait_until(vm, "df -k %s | awk 'NR==2 {print $4}'" % logs,
               lambda s, o: s == 0 and o.split()[-1:] == ["0"], 600,
               "the flooding guest to fill the console log file system")
    vm.run("sleep 10", timeout=60)
    for service in ("xenconsoled", "xend", "syslogd"):
        status, out = vm.run("pidof %s" % service, check=False)
        if status != 0:
            raise Failure("%s is gone after the console flood" % service)
    if list_row(vm, "flood") is None:
        raise Failure("xm list does not show the flooding guest")
    vm.run("dd if=/dev/zero of=/var/lib/xen/save/room bs=1k count=4096 2>&1 && "
           "rm /var/lib/xen/save/room")
    # Nothing on /var grows with the flood (xenconsoled's own error log lives
    # on the bounded file system too).
    _, first = vm.run("du -skx /var | cut -f1")
    vm.run("sleep 10", timeout=60)
    _, second = vm.run("du -skx /var | cut -f1")
    if int(second.split()[-1]) - int(first.split()[-1]) > 64:
        raise Failure("/var grew from %s to %s KiB in 10 s of console flood"
                      % (first.strip(), second.strip()))
    spam = vm.text(mark).count("xenconsoled:")
    if spam:
        raise Failure("xenconsoled wrote %d messages to the console during the flood" % spam)
    vm.run("xm destroy flood", timeout=120)
    expect_gone(vm, "flood")
    vm.run("rm -f %s/filler %s/guest-flood.log" % (logs, logs))
    # The demo guest ran on through the flood: its ticks reach its log again.
    before = last_tick(vm, "demo")
    wait_until(vm, "grep -a 'proxenos-demo: tick' %s | tail -1" % (GUEST_LOG % "demo"),
               lambda s, o: last_tick_of(o) > before, 180, "demo ticks after the flood")
    print("smoke: lifecycle: console flood contained (log file system full, "
          "services up, /var still, no console spam, demo ticking)", flush=True)


def last_tick_of(line):
    match = re.search(r"tick (\d+)", line)
    return int(match.group(1)) if match else -1


def blk_line(vm, name, key, timeout):
    """The demo guest's `proxenos-blk: KEY ...` console line (rest of it)."""
    out = wait_until(vm, "grep -a -m1 'proxenos-blk: %s' %s" % (key, GUEST_LOG % name),
                     lambda s, o: s == 0, timeout, "the guest's blk line %r" % key)
    return out.split("proxenos-blk: %s" % key, 1)[1].strip()


@scenario("blk", session="blk")
def blk(session):
    """Our blkback serves the demo guest (the kernel's xen-blkback not
    loaded): a file: disk of random data made in dom0 reads back with the
    same checksum, a pattern the guest writes is in the image after xm
    shutdown, a phy: loop device in mode r refuses writes in the guest, a
    discard frees the file's blocks, blkback SIGKILLed during a guest
    write loop comes back (the loop ends with no failed write, the right
    checksum and no I/O error in the guest's log), and xm block-attach adds
    a disk the guest reads, xm block-list shows it, xm block-detach removes
    it."""
    vm = session.vm
    status, _ = vm.run("grep -q '^xen_blkback ' /proc/modules", check=False)
    if status == 0:
        raise Failure("the kernel's xen-blkback is loaded")
    _, pid = vm.run("pidof blkback")
    if not pid.strip().isdigit():
        raise Failure("blkback is not running (pidof said %r)" % pid)
    _, marker = vm.run("proxenos xenstore read /proxenos/backend/vbd")
    expect_equal("blkback's announcement", marker.strip(), pid.strip())

    work = "/mnt/blk"
    vm.run("mkdir -p %s && mount -t tmpfs -o size=64m blk %s" % (work, work))
    vm.run("dd if=/dev/urandom of=%s/disk.img bs=1M count=8 2>/dev/null && "
           "dd if=/dev/urandom of=%s/ro.img bs=1M count=2 2>/dev/null" % (work, work),
           timeout=120)
    _, disk_sum = vm.run("md5sum < %s/disk.img | cut -d' ' -f1" % work)
    _, ro_sum = vm.run("md5sum < %s/ro.img | cut -d' ' -f1" % work)
    _, loop = vm.run("losetup -f")
    loop = loop.strip()
    vm.run("losetup %s %s/ro.img" % (loop, work))
    vm.run("printf '%%s\\n' 'kernel = \"/usr/share/proxenos/demo/vmlinux.gz\"' "
           "'ramdisk = \"/usr/share/proxenos/demo/initrd.gz\"' 'memory = 128' 'name = \"blk\"' "
           "'extra = \"console=hvc0 proxenos.blk\"' "
           "\"disk = ['file:%s/disk.img,xvda,w', 'phy:%s,xvdb,r']\" > %s/blk.cfg"
           % (work, loop.replace("/dev/", ""), work))
    _, blocks_before = vm.run("stat -c %%b %s/disk.img" % work)

    _, out = vm.run("xm create %s/blk.cfg" % work, timeout=400)
    if "Started domain blk" not in out:
        raise Failure("xm create with two disks said %r" % out)
    read = blk_line(vm, "blk", "read", 600)
    expect_equal("the guest's checksum of the file: disk", read, disk_sum.strip())
    ro = blk_line(vm, "blk", "ro getro", 120)
    expect_equal("the phy: disk in the guest", ro, "=1 md5=%s" % ro_sum.strip())
    refused = blk_line(vm, "blk", "ro write", 120)
    if refused == "=0":
        raise Failure("a write to the read-only phy: disk succeeded in the guest")
    wrote = blk_line(vm, "blk", "wrote", 300)
    pattern, write_status = wrote.split()
    expect_equal("the guest's pattern write", write_status, "status=0")
    discarded = blk_line(vm, "blk", "discarded", 300)
    expect_equal("the guest's blkdiscard", discarded, "status=0")
    _, blocks_after = vm.run("stat -c %%b %s/disk.img" % work)
    before, after = int(blocks_before.strip()), int(blocks_after.strip())
    # 4 MiB of 8 discarded: at least 3 MiB of 512-byte blocks freed.
    if after > before - 6144:
        raise Failure("the discard freed too little: %d -> %d blocks" % (before, after))
    print("smoke: blk: read, read-only refusal, write and discard (%d -> %d blocks) done"
          % (before, after), flush=True)

    # Waited for, killed and checked in one dom0 command, so the kill lands
    # at once while the loop still runs. PID 1 reports the kill on the
    # console amid the output, hence the tagged count.
    old = pid.strip()
    _, ended = vm.run(
        "i=0; while ! grep -a -q 'proxenos-blk: loop start' %s && [ $i -lt 3000 ]; do "
        "sleep 0.1; i=$((i + 1)); done; kill -9 %s; "
        "echo \"ended=$(grep -a -c 'proxenos-blk: loop done' %s)\""
        % (GUEST_LOG % "blk", old, GUEST_LOG % "blk"), timeout=400, check=False)
    match = re.search(r"ended=(\d+)", ended)
    if not match or match.group(1) != "0":
        raise Failure("blkback was not killed during the guest's write loop: %r" % ended)
    new = wait_until(vm, "pidof blkback", lambda s, o: s == 0 and o.strip() != old
                     and o.strip().isdigit(), 60, "blkback respawned after SIGKILL").strip()
    done = blk_line(vm, "blk", "loop done", 900)
    expect_equal("the write loop across blkback's restart", done,
                 "failed=0 md5=%s ioerrors=0" % pattern)
    _, resumed = vm.run("grep -a 'resumed ring' /var/log/xen/blkback.log | tail -2", check=False)
    if "resumed" not in resumed:
        raise Failure("blkback %s logged no resumed ring: %r" % (new, resumed))
    print("smoke: blk: blkback %s SIGKILLed during the loop, %s took over (%s); loop clean"
          % (old, new, " / ".join(line.split("] ", 1)[-1] for line in resumed.splitlines())),
          flush=True)

    # Hot plug: a third disk appears in the running guest and goes again.
    vm.run("dd if=/dev/urandom of=%s/hot.img bs=1M count=2 2>/dev/null" % work, timeout=120)
    _, hot_sum = vm.run("md5sum < %s/hot.img | cut -d' ' -f1" % work)
    vm.run("xm block-attach blk file:%s/hot.img xvdc w" % work, timeout=120)
    hot = blk_line(vm, "blk", "hot md5", 600)
    expect_equal("the hot-plugged disk in the guest", hot, "=%s" % hot_sum.strip())
    _, listed = vm.run("xm block-list blk")
    rows = [line.split() for line in listed.splitlines()[1:] if line.strip()]
    if [row[0] for row in rows] != ["51712", "51728", "51744"] or any(
            row[3] != "4" for row in rows):
        raise Failure("xm block-list after block-attach: %r" % listed)
    vm.run("xm block-detach blk xvdc", timeout=180)
    gone = blk_line(vm, "blk", "hot gone", 600)
    expect_equal("the unplugged disk in the guest", gone, "=yes")
    _, listed = vm.run("xm block-list blk")
    rows = [line.split()[0] for line in listed.splitlines()[1:] if line.strip()]
    expect_equal("xm block-list after block-detach", rows, ["51712", "51728"])
    print("smoke: blk: xm block-attach, block-list and block-detach of xvdc", flush=True)

    vm.run("xm shutdown -w blk", timeout=600)
    expect_gone(vm, "blk")
    _, image = vm.run("head -c 4194304 %s/disk.img | md5sum | cut -d' ' -f1" % work)
    expect_equal("the pattern in the image after xm shutdown", image.strip(), pattern)
    vm.run("losetup -d %s && umount %s" % (loop, work))
