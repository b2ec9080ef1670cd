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

    service = "consoled"
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
    for service in ("consoled", "xend", "syslogd"):
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
    spam = vm.text(mark).count("consoled:")
    if spam:
        raise Failure("consoled wrote %d messages to the console during the flood" % spam)
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


# ---------------------------------------------------------------- console

CONSOLE_STAMP = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "


def ticks_in(text):
    return [int(n) for n in re.findall(r"proxenos-demo: tick (\d+)", text)]


@scenario("console", session="console")
def console(session):
    """consoled: xm console on the demo guest shows its prompt and runs a
    typed command; a spy sees the same and cannot type; --force takes write
    access and the writer is told; the log holds timestamped lines and the
    attach events; a flooding guest does not stop the demo guest's console
    from answering within 1 s or its ticks from reaching its log; consoled
    killed with SIGKILL comes back and the output written meanwhile is in
    the log; the image has no xenconsoled."""
    vm = session.vm
    status, out = vm.run("ls /usr/lib/xen-4.17/bin/xenconsoled 2>&1; pidof xenconsoled",
                         check=False)
    if status == 0 or "No such file" not in out:
        raise Failure("xenconsoled is still in the image: %r" % out)
    vm.run("pidof consoled")
    vm.run("xm create demo", timeout=400)
    log = GUEST_LOG % "demo"
    wait_until(vm, "grep -a -m1 'proxenos-demo: init reached' %s" % log,
               lambda s, o: s == 0, 600, "the demo guest's init marker")

    # A spy first (its stdin held open by sleep), then the writer on the
    # serial console.
    vm.run("(sleep 300 | xm console --spy demo > /tmp/spy.out 2>&1 &)")
    wait_until(vm, "cat /tmp/spy.out", lambda s, o: "as a spy" in o, 60, "the spy to attach",
               pause=1)
    vm.send("xm console demo\n")
    vm.expect(r"attached to demo \(domain \d+\) read-write", 60, "xm console attaching")
    vm.send("\r")
    vm.expect(r"# ", 60, "the guest's shell prompt")
    vm.send("echo CONSOLE-$((6*7))-OK\r")
    vm.expect(r"CONSOLE-42-OK", 60, "the typed command's output")
    vm.send("\x1d")
    vm.expect(r"\[consoled\] detached", 60, "Ctrl-] detaching")
    vm.run("true", timeout=60)
    wait_until(vm, "cat /tmp/spy.out", lambda s, o: "CONSOLE-42-OK" in o, 30,
               "the spy to see the writer's command", pause=1)
    # The spy types; nothing reaches the guest.
    vm.run("(printf 'echo SPY-$((5*5))-TYPED\\r'; sleep 3) | xm console --spy demo "
           "> /tmp/spy2.out 2>&1", timeout=60)
    vm.run("sleep 3", timeout=30)
    _, out = vm.run("grep -ac 'SPY-25-TYPED' %s; cat /tmp/spy2.out" % log, check=False)
    if out.split()[0] != "0":
        raise Failure("a spy's typing reached the guest: %r" % out)
    if "ignored" not in out:
        raise Failure("the spy was not told its input is ignored: %r" % out)

    # --force from a second client bumps the first writer, who is told.
    vm.run("(sleep 300 | xm console demo > /tmp/first.out 2>&1 &)")
    wait_until(vm, "cat /tmp/first.out", lambda s, o: "read-write" in o, 60,
               "the first writer to attach", pause=1)
    vm.run("(sleep 300 | xm console --force demo > /tmp/second.out 2>&1 &)")
    wait_until(vm, "cat /tmp/first.out", lambda s, o: "took write access" in o, 60,
               "the first writer to be told it was bumped", pause=1)
    _, out = vm.run("cat /tmp/second.out")
    if "read-write" not in out:
        raise Failure("the forced attach did not get write access: %r" % out)

    _, text = vm.run("cat %s" % log)
    for pattern, what in [(CONSOLE_STAMP + r"proxenos-demo: tick \d+", "timestamped ticks"),
                          (CONSOLE_STAMP + r"\[consoled\] attach read-write by", "a write attach"),
                          (CONSOLE_STAMP + r"\[consoled\] attach spy by", "a spy attach"),
                          (CONSOLE_STAMP + r"\[consoled\] bump .* to spy by", "the bump"),
                          (CONSOLE_STAMP + r"\[consoled\] detach ", "a detach")]:
        if not re.search(pattern, text, re.M):
            raise Failure("the guest log has no %s:\n%s" % (what, text[-2000:]))
    vm.run("kill $(pidof sleep) 2>/dev/null; true")

    # A guest printing without pause: the demo guest's console answers
    # within 1 s and its ticks keep reaching its log.
    vm.run("xm create demo name=flood 'extra=console=hvc0 proxenos.flood'", timeout=400)
    wait_until(vm, "ls -l %s 2>/dev/null | awk '{print $5}'" % (GUEST_LOG % "flood"),
               lambda s, o: s == 0 and o.strip().isdigit() and int(o.strip()) > 65536, 600,
               "the flooding guest's log to grow")
    before = last_tick(vm, "demo")
    _, out = vm.run(
        "rm -f /tmp/in /tmp/answer.out; mkfifo /tmp/in; "
        "(xm console --replay 0 demo < /tmp/in > /tmp/answer.out 2>&1 &); exec 3>/tmp/in; "
        "i=0; while ! grep -q read-write /tmp/answer.out && [ $i -lt 600 ]; do sleep 0.1; "
        "i=$((i+1)); done; t0=$(%s); echo 'echo ANSWER-$((3*3))-OK' >&3; i=0; "
        "while ! grep -q ANSWER-9-OK /tmp/answer.out && [ $i -lt 3000 ]; do i=$((i+1)); done; "
        "t=$(%s); exec 3>&-; echo \"answered=$(echo \"$t $t0\" | awk '{printf \"%%.2f\", $1 - $2}')\""
        % (UPTIME, UPTIME), timeout=180)
    match = re.search(r"answered=([\d.]+)", out)
    if not match or "ANSWER" not in vm.run("cat /tmp/answer.out", check=False)[1]:
        raise Failure("the demo console did not answer during the flood: %r" % out)
    answered = float(match.group(1))
    if answered > 1.0:
        raise Failure("the demo console answered after %.2f s during the flood (> 1 s)" % answered)
    wait_until(vm, "grep -a 'proxenos-demo: tick' %s | tail -1" % log,
               lambda s, o: last_tick_of(o) > before + 2, 60, "demo ticks during the flood")
    status, _ = vm.run("true", timeout=30)
    vm.run("xm destroy flood", timeout=120)
    print("smoke: console: demo console answered in %.2f s during a flood" % answered, flush=True)

    # consoled SIGKILLed: PID 1 brings it back; the ticks written while it
    # was down reach the log, none lost.
    _, old = vm.run("pidof consoled")
    before = last_tick(vm, "demo")
    vm.run("kill -9 %s" % old.strip())
    vm.run("sleep 4", timeout=30)
    wait_until(vm, "pidof consoled", lambda s, o: s == 0 and o.strip() != old.strip(), 60,
               "consoled back after SIGKILL", pause=1)
    wait_until(vm, "grep -a 'proxenos-demo: tick' %s | tail -1" % log,
               lambda s, o: last_tick_of(o) > before + 6, 120, "ticks after consoled's restart")
    _, text = vm.run("grep -a 'proxenos-demo: tick' %s | tail -40" % log)
    ticks = [t for t in ticks_in(text) if t >= before]
    missing = sorted(set(range(before, max(ticks) + 1)) - set(ticks))
    if missing:
        raise Failure("ticks %s are missing from the log across consoled's restart" % missing)
    print("smoke: console: consoled restarted; ticks %d..%d all logged"
          % (before, max(ticks)), flush=True)
