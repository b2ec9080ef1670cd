#!/usr/bin/env python3
"""Where the dom0 archive's bytes go: `make sizes`.

Unpacks build/dom0.cpio.zst and prints, per group of files, the bytes
unpacked and the bytes each group costs compressed on its own (zstd -19,
as the image is made; groups compressed apart add up to a little more
than the archive). Then, from the unstripped release binary, the bytes of
symbols per Swift module (demangled module prefix of `$s` symbols), the
Swift runtime, and C code, so a cut can be aimed at what is large.

    image/size-report.py build/dom0.cpio.zst .build-release/release/proxenos
"""
import collections
import os
import re
import stat
import subprocess
import sys
import tempfile


def zstd_size(paths):
    """Bytes of `paths` concatenated and compressed as the image is."""
    if not paths:
        return 0
    data = b"".join(open(p, "rb").read() for p in paths)
    out = subprocess.run(["zstd", "-19", "-T0", "-q", "-c"], input=data,
                         stdout=subprocess.PIPE, check=True).stdout
    return len(out)


def group_of(path):
    if path.startswith("lib/modules/"):
        return "kernel modules"
    if path == "bin/proxenos":
        return "proxenos (our binary)"
    if path == "bin/busybox":
        return "busybox"
    if path.startswith(("lib/", "lib64/", "usr/lib/x86_64-linux-gnu/")):
        name = os.path.basename(path)
        return "lib " + re.sub(r"\.so.*", "", name)
    if path.startswith("usr/lib/xen") or path.startswith("usr/sbin/") or path.startswith("usr/bin/"):
        return "other programs (xenstored, dropbear)"
    return "other files"


def archive_report(archive):
    with tempfile.TemporaryDirectory() as root:
        cpio = subprocess.run(["zstd", "-dc", archive], stdout=subprocess.PIPE, check=True).stdout
        subprocess.run(["cpio", "-idm", "--quiet"], input=cpio, cwd=root, check=True)
        groups = collections.defaultdict(list)
        for top, _, files in os.walk(root):
            for name in files:
                full = os.path.join(top, name)
                # Regular files only: the archive also has links and
                # device nodes (/dev/console would be read for ever).
                if not stat.S_ISREG(os.lstat(full).st_mode):
                    continue
                groups[group_of(os.path.relpath(full, root))].append(full)
        rows = []
        for group, paths in groups.items():
            raw = sum(os.path.getsize(p) for p in paths)
            rows.append((zstd_size(paths), raw, group))
        # Small libraries together, so the table stays readable.
        small = [r for r in rows if r[2].startswith("lib ") and r[0] < 150_000]
        rows = [r for r in rows if r not in small]
        if small:
            rows.append((sum(r[0] for r in small), sum(r[1] for r in small),
                         "%d smaller libraries" % len(small)))
        print("dom0 archive %s: %d bytes compressed, %d unpacked"
              % (archive, os.path.getsize(archive), sum(r[1] for r in rows)))
        print("%12s %12s  %s" % ("zstd -19", "unpacked", "group"))
        for packed, raw, group in sorted(rows, reverse=True):
            print("%12d %12d  %s" % (packed, raw, group))


def module_of(symbol):
    match = re.match(r"\$s(\d+)", symbol)
    if match:
        length = int(match.group(1))
        start = 2 + len(match.group(1))
        return symbol[start:start + length]
    if symbol.startswith("$s"):
        return "Swift (stdlib, and its generics specialized for us)"
    if symbol.startswith(("swift_", "_swift", "_ZN5swift")):
        return "Swift runtime (C++)"
    if "CFUniChar" in symbol or symbol.startswith("_CF"):
        return "FoundationEssentials (C parts)"
    if "dispatch" in symbol:
        return "libdispatch"
    return "C and other"


def binary_report(binary):
    out = subprocess.run(["nm", "-S", "--size-sort", binary], stdout=subprocess.PIPE,
                         check=True, text=True).stdout
    sizes = collections.Counter()
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 4:
            continue
        sizes[module_of(parts[3])] += int(parts[1], 16)
    total = sum(sizes.values())
    print("symbols of %s: %d bytes (the rest of the file: unwind tables, "
          "relocations, symbol names)" % (binary, total))
    for module, size in sizes.most_common(25):
        print("%12d  %s" % (size, module))


def main():
    archive = sys.argv[1] if len(sys.argv) > 1 else "build/dom0.cpio.zst"
    binary = sys.argv[2] if len(sys.argv) > 2 else ".build-release/release/proxenos"
    archive_report(archive)
    print()
    if os.path.exists(binary):
        binary_report(binary)


if __name__ == "__main__":
    main()
