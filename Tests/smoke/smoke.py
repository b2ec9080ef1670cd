#!/usr/bin/env python3
"""Proxenos appliance smoke tests: boot the real image under QEMU (TCG) and
drive it over the serial console.

Scenarios that share one booted appliance run in one QEMU session, in the
order given; every session ends with `poweroff`, which must end QEMU with
exit status 0 and no kernel panic. On a failure the whole serial log is kept
under the build folder and its tail printed.

    smoke.py --iso build/proxenos.iso [--only NAME[,NAME]] [--list]
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
import threading
import time

SCENARIOS = {}


# A console line of dom0's own programs (PID 1, its boot steps, services)
# or of the kernel: see Appliance.run.
CONSOLE_NEWS = re.compile(r"^(proxenos: |proxenos ready in |\[\s*\d+\.\d+\] )")


class Failure(Exception):
    """A check that did not hold: the message says what was expected."""


def scenario(name, session="shared"):
    """Registers a scenario. `session` names the QEMU session it needs:
    scenarios of the same session share one boot."""
    def register(function):
        SCENARIOS[name] = (function, session)
        return function
    return register


class ProcessOutput:
    """A process's merged stdout and stderr, collected by a thread as it
    comes (and copied to `log` when given), searched from a cursor."""

    def __init__(self, process, log=None):
        self.process = process
        self.log = log
        self.buffer = bytearray()
        self.lock = threading.Condition()
        self.cursor = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            chunk = self.process.stdout.read1(65536)
            if not chunk:
                break
            if self.log:
                self.log.write(chunk)
                self.log.flush()
            with self.lock:
                self.buffer += chunk
                self.lock.notify_all()
        with self.lock:
            self.lock.notify_all()

    @property
    def alive(self):
        return self.process.poll() is None

    def text(self, start=0, end=None):
        with self.lock:
            return self.buffer[start:end].decode("utf-8", "replace")

    def wait_for(self, pattern, timeout, anywhere=False):
        """The first match of `pattern` after the cursor, which moves past
        it (with `anywhere`, in the whole output, and the cursor stays);
        None once `timeout` s passed or the output ended."""
        regex = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                match = regex.search(self.buffer, 0 if anywhere else self.cursor)
                if match:
                    if not anywhere:
                        self.cursor = match.end()
                    return match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (not self.alive and not self.reader.is_alive()):
                    return None
                self.lock.wait(min(remaining, 0.5))


class Appliance(ProcessOutput):
    """A QEMU process whose serial console is our stdin/stdout pipe."""

    def __init__(self, command, log_path, timeout):
        self.log_path = log_path
        self.counter = 0
        self.started = time.monotonic()
        super().__init__(subprocess.Popen(
            ["timeout", "--kill-after=10", str(timeout)] + command,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT),
            open(log_path, "wb"))

    def expect(self, pattern, timeout, what=None):
        """Waits for a regex after the cursor; moves the cursor past it."""
        match = self.wait_for(pattern, timeout)
        if match:
            return match
        if not self.alive and not self.reader.is_alive():
            raise Failure("QEMU ended (status %s) while waiting for %s"
                          % (self.process.returncode, what or pattern))
        raise Failure("timed out after %d s waiting for %s" % (timeout, what or pattern))

    def send(self, text):
        """Types text slowly enough for Xen's console input path."""
        data = text.encode()
        for i in range(0, len(data), 16):
            self.process.stdin.write(data[i:i + 16])
            self.process.stdin.flush()
            time.sleep(0.02)

    def run(self, command, timeout=60, check=True):
        """Runs a shell command on the console; returns (status, output)."""
        self.counter += 1
        tag = "PXS%d" % self.counter
        # The marker is split in the typed text so the echo cannot match it.
        self.send("%s; echo %s''=$?=\n" % (command, tag))
        start = self.cursor
        match = self.expect(r"%s=(\d+)=" % tag, timeout, "the end of `%s`" % command)
        output = self.text(start, match.start())
        # Drop the echoed command line, if the terminal echoed it.
        lines = output.replace("\r", "").split("\n")
        if lines and tag in lines[0]:
            lines = lines[1:]
        # Lines PID 1's programs write to the console whenever they have
        # news (dropbear's new host keys, made while the tests already
        # run) land amid a command's output: they are not the command's.
        lines = [line for line in lines if not CONSOLE_NEWS.match(line)]
        output = "\n".join(lines).strip("\n")
        status = int(match.group(1))
        if check and status != 0:
            raise Failure("`%s` exited with %d:\n%s" % (command, status, output))
        return status, output

    def wait_exit(self, timeout):
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Failure("QEMU still running %d s after poweroff" % timeout)

    def xen_dump(self, wait=8):
        """Asks Xen for its debug-key dumps (CTRL-a three times switches the
        serial input to Xen; `d` dumps every CPU, `0` dom0's vCPUs with
        their stacks); returns what Xen printed. For a boot that hangs:
        where dom0's vCPUs are, even when dom0 itself cannot say."""
        if not self.alive:
            return ""
        start = len(self.buffer)
        try:
            for key in ("\x01", "\x01", "\x01", "d", "0", "\x01", "\x01", "\x01"):
                self.send(key)
                time.sleep(0.3)
        except OSError:
            return ""
        time.sleep(wait)
        return self.text(start, len(self.buffer))

    def kill(self):
        # SIGTERM, which `timeout` passes on to QEMU: a SIGKILL would end
        # only `timeout` and leave QEMU running with no deadline.
        if self.alive:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def close(self):
        self.kill()
        self.reader.join(5)
        self.log.close()


class Session:
    """One boot of the appliance: banner, shell set-up, and power-off."""

    def __init__(self, args, name, iso):
        """`iso`: the image to boot; or (image, options) with options for
        the user-mode netdev (guestfwd, hostfwd: restrict=on stays); or a
        whole QEMU command (a list) from a session's set-up, e.g. a network
        boot."""
        self.args = args
        self.name = name
        os.makedirs(os.path.join(args.build, "smoke"), exist_ok=True)
        self.log_path = os.path.join(args.build, "smoke", "%s.log" % name)
        if isinstance(iso, list):
            boot = iso
        else:
            netdev_options = None
            if isinstance(iso, tuple):
                iso, netdev_options = iso
            boot = shlex.split(args.qemu)
            if netdev_options:
                boot = [word.replace("restrict=on", "restrict=on," + netdev_options, 1)
                        if word.startswith("user,") else word for word in boot]
            boot += ["-cdrom", iso]
        command = boot + ["-display", "none", "-serial", "stdio", "-monitor", "none"]
        self.vm = Appliance(command, self.log_path, args.timeout)
        self.ready_seconds = None
        self.ready_host_seconds = None
        self.init_seconds = None
        # The median wall time of an `xm list` in dom0 (the boot scenario).
        self.exec_seconds = None

    def boot(self):
        # Up to the " (" after the figures: the line may arrive in pieces.
        match = self.vm.expect(r"proxenos ready in (\d+\.\d\d) s(?:, init (\d+\.\d\d) s)? \(",
                               self.args.boot_timeout, "the ready banner")
        self.ready_seconds = float(match.group(1))
        self.init_seconds = float(match.group(2)) if match.group(2) else None
        self.ready_host_seconds = time.monotonic() - self.vm.started
        self.vm.expect(r"# ", 60, "the shell prompt")
        # No echo, no prompt, wide lines: the console then carries only output.
        self.vm.send("stty -echo cols 500; PS1=''; export PS1\n")
        self.vm.run("true", timeout=60)

    def power_off(self):
        self.vm.send("poweroff\n")
        status = self.vm.wait_exit(120)
        log = self.vm.text()
        if "Kernel panic" in log:
            raise Failure("kernel panic in the serial log")
        if status != 0:
            raise Failure("QEMU exited with status %d after poweroff" % status)


def summarize_xen_dump(dump):
    """Short lines saying where each dom0 vCPU is (its RIP and the kernel
    text addresses on its stack) and what each CPU runs in Xen. Debian's
    System.map is a placeholder: resolve the addresses against a booted
    dom0's /proc/kallsyms (a PV dom0's kernel is not relocated)."""
    lines = []
    for match in re.finditer(r"Dumping Dom0 vcpu#(\d+) state.*?(?=Dumping Dom0 vcpu#|\Z)",
                             dump, re.S):
        block = match.group(0)
        rip = re.search(r"RIP:\s+\w+:\[<([0-9a-f]+)>\]", block)
        stack = block.split("stack trace", 1)[1] if "stack trace" in block else ""
        words = re.findall(r"\b(ffffffff8[0-9a-f]{7})\b", stack)
        lines.append("dom0 vCPU%s RIP %s; kernel text on its stack: %s" % (
            match.group(1), rip.group(1) if rip else "?", " ".join(words[:16]) or "-"))
    for match in re.finditer(r"\*\*\* Dumping CPU(\d+) host state.*?RIP:\s+\w+:\[<[0-9a-f]+>\]\s*(\S+)",
                             dump, re.S):
        lines.append("Xen CPU%s at %s" % (match.group(1), match.group(2)))
    return lines


def tail(path, lines=60):
    with open(path, "rb") as f:
        data = f.read().decode("utf-8", "replace").splitlines()
    return "\n".join(data[-lines:])


def main():
    parser = argparse.ArgumentParser(description="Proxenos smoke tests")
    parser.add_argument("--iso", default="build/proxenos.iso")
    parser.add_argument("--build", default="build")
    parser.add_argument("--qemu", default="qemu-system-x86_64 -machine q35 -cpu Nehalem,+rdrand "
                        "-smp 2 -m 2048 -no-reboot -netdev user,id=net0,restrict=on "
                        "-device e1000,netdev=net0")
    parser.add_argument("--timeout", type=int, default=900, help="QEMU's deadline, seconds")
    parser.add_argument("--boot-timeout", type=int, default=300)
    parser.add_argument("--only", help="comma-separated scenario names")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()

    import scenarios  # noqa: F401  (registers every scenario)

    if args.list:
        for name, (_, session) in SCENARIOS.items():
            print("%s (session %s)" % (name, session))
        return 0
    names = list(SCENARIOS) if not args.only else args.only.split(",")
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print("smoke: unknown scenario(s) %s; known: %s" % (", ".join(unknown), ", ".join(SCENARIOS)))
        return 2

    sessions = {}
    for name in names:
        sessions.setdefault(SCENARIOS[name][1], []).append(name)

    failed = []
    ready = None
    for session_name, members in sessions.items():
        iso = args.iso
        setup = getattr(sys.modules["scenarios"], "session_" + session_name.replace("-", "_"), None)
        if setup:
            iso = setup(args)
        session = Session(args, session_name, iso)
        print("smoke: session %s: %s" % (session_name, ", ".join(members)), flush=True)
        began = time.monotonic()
        try:
            needs_shell = any(getattr(SCENARIOS[m][0], "needs_shell", True) for m in members)
            if needs_shell:
                session.boot()
                if session_name == "shared":
                    ready = session
            for name in members:
                t0 = time.monotonic()
                try:
                    SCENARIOS[name][0](session)
                    print("smoke: PASS %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)
                except Failure as failure:
                    print("smoke: FAIL %s: %s" % (name, failure), flush=True)
                    failed.append(name)
                    break
            if needs_shell and session.vm.alive and not failed:
                session.power_off()
                print("smoke: session %s powered off cleanly after %.1f s"
                      % (session_name, time.monotonic() - began), flush=True)
        except Failure as failure:
            print("smoke: FAIL session %s: %s" % (session_name, failure), flush=True)
            failed.append(session_name)
        finally:
            if failed and session.vm.alive:
                # Where dom0 and Xen are, for a boot or command that hangs.
                dump = session.vm.xen_dump()
                diagnosis = summarize_xen_dump(dump)
            else:
                diagnosis = []
            session.vm.close()
            # What a session's set-up started beside QEMU (a DHCP server).
            teardown = getattr(sys.modules["scenarios"],
                               "teardown_" + session_name.replace("-", "_"), None)
            if teardown:
                teardown()
        if failed:
            print("smoke: serial log kept at %s; its tail:" % session.log_path)
            print(tail(session.log_path))
            for line in diagnosis:
                print("smoke: %s" % line)
            break

    if failed:
        print("smoke: FAILED: %s" % ", ".join(failed))
        return 1
    print("smoke: all %d scenario(s) passed" % len(names))
    if ready is not None:
        figures = ["boot-to-ready %.2f s (dom0 uptime at the banner; %.2f s from QEMU start)"
                   % (ready.ready_seconds, ready.ready_host_seconds)]
        if ready.init_seconds is not None:
            figures.append("init-to-ready %.2f s" % ready.init_seconds)
        if ready.exec_seconds is not None:
            figures.append("exec %.3f s" % ready.exec_seconds)
        print("smoke: " + ", ".join(figures))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.modules.setdefault("smoke", sys.modules[__name__])
    sys.exit(main())
