#!/usr/bin/env python3
"""Build a cpio (newc) initramfs from a list file, without root.

Every entry is owned by root (uid 0, gid 0) and has mtime 0, so the archive is
reproducible and needs no privileges. The list format, one entry a line
(`#` starts a comment, ${VAR} is replaced by -D VAR=value):

    dir     DEST MODE
    nod     DEST MODE c|b MAJOR MINOR
    slink   DEST TARGET
    file    DEST SRC MODE          a regular file
    elf     DEST SRC MODE          a file plus the shared libraries it needs
    tree    DEST SRCDIR            a directory tree (files keep their x bit)
    busybox DEST SRC               busybox plus a symlink per applet
    modules LIST[,LIST] KROOT KVER kernel modules named in the lists with their
                                   dependencies, and depmod's tables for them
    library NAME                   a shared library (and its own needs) by soname

Shared libraries are found with ldd on the build host, which must run the
same Debian release as the image (`make deps` installs the -dev packages).
"""
import argparse
import gzip
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile


class Archive:
    """Entries by path; later entries for a path replace earlier ones."""

    def __init__(self):
        self.entries = {}

    def add_dirs(self, path):
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/" + "/".join(parts[:i])
            if d not in self.entries:
                self.entries[d] = ("dir", 0o755, None)

    def dir(self, path, mode):
        self.add_dirs(path)
        self.entries[path] = ("dir", mode, None)

    def file(self, path, src, mode):
        self.add_dirs(path)
        self.entries[path] = ("file", mode, src)

    def slink(self, path, target):
        self.add_dirs(path)
        self.entries[path] = ("slink", 0o777, target)

    def nod(self, path, mode, kind, major, minor):
        self.add_dirs(path)
        self.entries[path] = ("nod", mode, (kind, major, minor))

    def write(self, out):
        ino = 1
        # Parents sort before their children, so extraction never misses a dir.
        for path in sorted(self.entries):
            kind, mode, data = self.entries[path]
            body = b""
            rdev = (0, 0)
            if kind == "dir":
                fmt = stat.S_IFDIR
            elif kind == "file":
                fmt = stat.S_IFREG
                with open(data, "rb") as f:
                    body = f.read()
            elif kind == "slink":
                fmt = stat.S_IFLNK
                body = data.encode()
            else:
                fmt = stat.S_IFCHR if data[0] == "c" else stat.S_IFBLK
                rdev = (data[1], data[2])
            nlink = 2 if kind == "dir" else 1
            header(out, path.lstrip("/"), ino, fmt | mode, nlink, len(body), rdev)
            out.write(body)
            pad(out, len(body))
            ino += 1
        header(out, "TRAILER!!!", 0, 0, 1, 0, (0, 0))


def header(out, name, ino, mode, nlink, size, rdev):
    name_bytes = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev[0], rdev[1], len(name_bytes), 0]
    out.write(b"070701" + b"".join(b"%08X" % v for v in fields))
    out.write(name_bytes)
    pad(out, 110 + len(name_bytes))


def pad(out, length):
    out.write(b"\0" * ((4 - length % 4) % 4))


LDD_LINE = re.compile(r"^\s*(?:\S+ => )?(/\S+) \(0x[0-9a-f]+\)$")


def shared_libraries(path):
    """Absolute paths of the libraries an ELF file needs, loader included."""
    result = subprocess.run(["ldd", path], capture_output=True, text=True)
    if result.returncode != 0:
        if "not a dynamic executable" in result.stdout + result.stderr:
            return []
        sys.exit("mkinitramfs: ldd %s failed: %s" % (path, result.stderr.strip()))
    libraries = []
    for line in result.stdout.splitlines():
        if "not found" in line:
            sys.exit("mkinitramfs: %s needs a library the host lacks: %s" % (path, line.strip()))
        match = LDD_LINE.match(line)
        if match:
            libraries.append(match.group(1))
    return libraries


def add_library(archive, path):
    """Adds a library as a file at the path the loader asks for (copied
    from wherever symlinks on the host lead)."""
    archive.file(path, os.path.realpath(path), 0o755)


def add_elf(archive, dest, src, mode):
    archive.file(dest, src, mode)
    for library in shared_libraries(src):
        add_library(archive, library)


def find_library(soname):
    result = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True)
    for line in result.stdout.splitlines():
        parts = line.strip().split(" => ")
        if len(parts) == 2 and parts[0].split(" ")[0] == soname and "x86-64" in parts[0]:
            return parts[1]
    sys.exit("mkinitramfs: library %s not found on the build host" % soname)


def add_tree(archive, dest, src):
    for root, dirs, files in os.walk(src):
        rel = os.path.relpath(root, src)
        base = dest if rel == "." else os.path.join(dest, rel)
        archive.dir(base, 0o755)
        for name in sorted(files):
            path = os.path.join(root, name)
            target = os.path.join(base, name)
            if os.path.islink(path):
                archive.slink(target, os.readlink(path))
            else:
                executable = os.stat(path).st_mode & 0o111
                archive.file(target, path, 0o755 if executable else 0o644)


def add_busybox(archive, dest, src):
    archive.file(dest, src, 0o755)
    applets = subprocess.run([src, "--list-full"], capture_output=True, text=True, check=True)
    for applet in applets.stdout.split():
        path = "/" + applet
        # Our own programs (init, and anything already listed) win.
        if path in archive.entries or os.path.basename(path) in ("init", "linuxrc"):
            continue
        archive.slink(path, dest)


def read_module_list(path):
    names = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line)
    return names


def module_key(name):
    return name.replace("-", "_")


def add_modules(archive, listfile, kroot, kver, workdir):
    """Copies the listed modules and their dependencies, then runs depmod on
    just that set so the image's tables name only what it carries."""
    full = os.path.join(kroot, "lib/modules", kver)
    if not os.path.exists(os.path.join(full, "modules.dep")):
        subprocess.run(["depmod", "-b", kroot, kver], check=True)
    paths, deps = {}, {}
    with open(os.path.join(full, "modules.dep")) as f:
        for line in f:
            path, _, rest = line.partition(":")
            key = module_key(os.path.basename(path).split(".ko")[0])
            paths[key] = path
            deps[key] = [module_key(os.path.basename(d).split(".ko")[0]) for d in rest.split()]
    builtin = set()
    with open(os.path.join(full, "modules.builtin")) as f:
        for line in f:
            builtin.add(module_key(os.path.basename(line.strip()).split(".ko")[0]))
    wanted, stack = set(), [module_key(n) for f in listfile.split(",") for n in read_module_list(f)]
    while stack:
        name = stack.pop()
        if name in wanted or name in builtin:
            continue
        if name not in paths:
            sys.exit("mkinitramfs: module %s (from %s) is not in kernel %s" % (name, listfile, kver))
        wanted.add(name)
        stack.extend(deps[name])
    stage = os.path.join(workdir, "lib/modules", kver)
    os.makedirs(stage)
    for name in ("modules.builtin", "modules.order", "modules.builtin.modinfo"):
        if os.path.exists(os.path.join(full, name)):
            shutil.copy(os.path.join(full, name), stage)
    for name in sorted(wanted):
        target = os.path.join(stage, paths[name])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(os.path.join(full, paths[name]), target)
    subprocess.run(["depmod", "-b", workdir, kver], check=True)
    add_tree(archive, "/lib/modules/" + kver, stage)
    # Binary indexes are for modprobe, which the image does not carry.
    for name in list(archive.entries):
        if name.startswith("/lib/modules/") and name.endswith(".bin"):
            del archive.entries[name]
    return sorted(wanted)


def substitute(text, variables):
    def repl(match):
        key = match.group(1)
        if key not in variables:
            sys.exit("mkinitramfs: ${%s} is not defined (-D %s=...)" % (key, key))
        return variables[key]
    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", repl, text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("list", help="the list file")
    parser.add_argument("output", help="the archive to write (.cpio, or .cpio.gz to gzip it)")
    parser.add_argument("-D", action="append", default=[], metavar="VAR=VALUE")
    parser.add_argument("--modules-out", help="write the module names included here")
    args = parser.parse_args()
    variables = dict(d.split("=", 1) for d in args.D)

    archive = Archive()
    work = tempfile.mkdtemp(prefix="mkinitramfs.")
    try:
        with open(args.list) as f:
            for number, raw in enumerate(f, 1):
                line = substitute(raw.split("#", 1)[0], variables).split()
                if not line:
                    continue
                kind, fields = line[0], line[1:]
                where = "%s:%d" % (args.list, number)
                try:
                    if kind == "dir":
                        archive.dir(fields[0], int(fields[1], 8))
                    elif kind == "nod":
                        archive.nod(fields[0], int(fields[1], 8), fields[2],
                                    int(fields[3]), int(fields[4]))
                    elif kind == "slink":
                        archive.slink(fields[0], fields[1])
                    elif kind == "file":
                        archive.file(fields[0], fields[1], int(fields[2], 8))
                    elif kind == "elf":
                        add_elf(archive, fields[0], fields[1], int(fields[2], 8))
                    elif kind == "tree":
                        add_tree(archive, fields[0], fields[1])
                    elif kind == "busybox":
                        add_busybox(archive, fields[0], fields[1])
                    elif kind == "library":
                        for library in [find_library(fields[0])] + shared_libraries(find_library(fields[0])):
                            add_library(archive, library)
                    elif kind == "modules":
                        names = add_modules(archive, fields[0], fields[1], fields[2],
                                            os.path.join(work, "modules"))
                        if args.modules_out:
                            with open(args.modules_out, "w") as out:
                                out.write("\n".join(names) + "\n")
                    else:
                        sys.exit("%s: unknown entry kind %r" % (where, kind))
                except (IndexError, ValueError) as error:
                    sys.exit("%s: malformed %s entry (%s)" % (where, kind, error))
                except FileNotFoundError as error:
                    sys.exit("%s: %s" % (where, error))
        # Check the files exist before writing anything.
        for path, (kind, _, data) in archive.entries.items():
            if kind == "file" and not os.path.isfile(data):
                sys.exit("mkinitramfs: %s: source %s is missing" % (path, data))
        tmp = args.output + ".tmp"
        with open(tmp, "wb") as raw:
            if args.output.endswith(".gz"):
                with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as out:
                    archive.write(out)
            else:
                archive.write(raw)
        os.replace(tmp, args.output)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
