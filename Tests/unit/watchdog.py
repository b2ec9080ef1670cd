#!/usr/bin/env python3
"""Runs `swift test` under a deadline, so a hang fails fast and says where.

The unit suite ends in about a minute here. Once, on CI, it stopped
printing 14 s in and stayed silent until the CI's 90-minute limit, and
the log showed nothing of where it stood. On a hang this prints what a
developer needs to find it: the tests started and never finished, and
every thread's stack of the test process (gdb), then stops the run.

A hung run is then run once more, and the verdict is that run's: the hang
above it stays in the log, loudly, as a bug to find. A run that fails
(rather than hangs) is never repeated.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

# A parameterized test's cases print starts but no ends: the test's own
# end line covers them.
STARTED = re.compile(r"^◇ Test (?!case passing |run started)(.+) started\.$")
ENDED = re.compile(r"^[✔✘➜] Test (.+?)(?: with \d+ test cases?)? (?:passed after|failed after|skipped)")


def process_tree(root):
    """The pids below `root` (itself excluded), from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, queue = [], [root]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def command_line(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def dump_stacks(pid):
    """Every thread's backtrace of `pid`, or why there is none."""
    if not shutil.which("gdb"):
        return "(no gdb on PATH: no stacks)"
    try:
        result = subprocess.run(
            ["gdb", "-p", str(pid), "-batch", "-ex", "set pagination off",
             "-ex", "thread apply all bt 40"],
            capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        return "(gdb did not finish within 180 s)"
    lines = [line for line in result.stdout.splitlines()
             if line.startswith(("Thread ", "#"))]
    return "\n".join(lines) or result.stderr.strip()


def run_once(command, limit):
    """Runs the suite; returns its exit status, or None when it hung."""
    started = {}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)

    def pump():
        for raw in process.stdout:
            line = raw.decode(errors="replace")
            sys.stdout.write(line)
            sys.stdout.flush()
            text = line.rstrip("\n")
            if match := STARTED.match(text):
                started[match.group(1)] = time.monotonic()
            elif match := ENDED.match(text):
                started.pop(match.group(1), None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        status = process.wait(timeout=limit)
        reader.join()
        return status
    except subprocess.TimeoutExpired:
        pass
    now = time.monotonic()
    print(f"\nunit: HANG: the suite did not end within {limit} s", flush=True)
    print(f"unit: {len(started)} test(s) started and never finished:")
    for name, since in sorted(started.items(), key=lambda item: item[1]):
        print(f"unit:   {name} (running for {now - since:.0f} s)")
    for pid in process_tree(process.pid):
        line = command_line(pid)
        if ".xctest" not in line and "swiftpm-testing-helper" not in line:
            continue
        print(f"unit: stacks of pid {pid} ({line}):")
        print(dump_stacks(pid), flush=True)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=600,
                        help="seconds one run of the suite may take")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="the test command, after --")
    arguments = parser.parse_args()
    command = arguments.command[1:] if arguments.command[:1] == ["--"] else arguments.command
    status = run_once(command, arguments.limit)
    if status is None:
        print("unit: running the suite once more; the hang above is a bug to find",
              flush=True)
        status = run_once(command, arguments.limit)
        if status is None:
            print("unit: the suite hung twice", flush=True)
            return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
