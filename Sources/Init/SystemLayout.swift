import LinuxSystem

/// The file systems, directories and files of a running Proxenos dom0:
/// what PID 1 mounts and creates before any service starts.
public enum SystemLayout {
    static let secure = Mounts.noSUID | Mounts.noDevices | Mounts.noExec

    /// Mounted first, in order; /proc before anything else reads it.
    public static let earlyMounts: [MountSpec] = [
        MountSpec(source: "proc", target: "/proc", type: "proc", flags: secure),
        MountSpec(source: "sysfs", target: "/sys", type: "sysfs", flags: secure),
        MountSpec(
            source: "devtmpfs", target: "/dev", type: "devtmpfs", flags: Mounts.noSUID,
            data: "mode=0755"),
        MountSpec(
            source: "devpts", target: "/dev/pts", type: "devpts",
            flags: Mounts.noSUID | Mounts.noExec, data: "gid=5,mode=0620,ptmxmode=0666"),
        MountSpec(
            source: "tmpfs", target: "/dev/shm", type: "tmpfs",
            flags: Mounts.noSUID | Mounts.noDevices, data: "mode=1777"),
        MountSpec(
            source: "tmpfs", target: "/run", type: "tmpfs",
            flags: Mounts.noSUID | Mounts.noDevices, data: "mode=0755"),
        MountSpec(
            source: "tmpfs", target: "/tmp", type: "tmpfs",
            flags: Mounts.noSUID | Mounts.noDevices, data: "mode=1777"),
        MountSpec(
            source: "tmpfs", target: "/var", type: "tmpfs",
            flags: Mounts.noSUID | Mounts.noDevices, data: "mode=0755"),
    ]

    /// Mounted once the xenfs module is loaded.
    public static let xenMounts: [MountSpec] = [
        MountSpec(source: "xenfs", target: "/proc/xen", type: "xenfs", flags: secure)
    ]

    /// Directories the dom0 programs expect on the fresh tmpfs mounts.
    public static let directories = [
        "/run/xenstored", "/run/xen", "/run/proxenos", "/var/log/xen", "/var/log/xen/console",
        "/var/log/proxenos",
        "/var/lib/xenstored", "/var/lib/xen", "/var/lib/xen/save", "/var/tmp", "/root",
    ]

    /// Mounted on the directories above. Guest console logs get a file
    /// system of their own with a fixed size, so that a guest flooding its
    /// console fills only that (its log stops growing) and never /var, where
    /// save files go, nor dom0's memory.
    public static let logMounts: [MountSpec] = [
        MountSpec(
            source: "tmpfs", target: consoleLogDirectory, type: "tmpfs", flags: secure,
            data: "mode=0755,size=\(consoleLogMiB)m")
    ]

    /// Where consoled writes each guest's console log and hypervisor.log.
    public static let consoleLogDirectory = "/var/log/xen/console"

    /// The size of the guest console logs' file system, in MiB.
    public static let consoleLogMiB = 16

    /// Symlinks (path → target) created after the mounts.
    public static let symlinks: [(path: String, target: String)] = [
        ("/var/run", "/run"), ("/dev/fd", "/proc/self/fd"), ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"), ("/dev/stderr", "/proc/self/fd/2"),
    ]

    /// The list of modules always loaded (one name per line, `#` comments),
    /// written by the image build from initramfs/modules.list.
    public static let moduleListPath = "/etc/proxenos/modules"

    /// The environment every service and the admin shell start with.
    public static let environment = [
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=linux", "SHELL=/bin/sh",
        "USER=root", "LOGNAME=root",
    ]
}
