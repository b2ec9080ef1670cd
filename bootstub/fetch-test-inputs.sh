#!/bin/sh
# Fetches and prepares what the boot stub's tests boot, into a cache
# directory outside git (default: cache/ at the repository root):
#   xen-4.17-amd64   Xen, gunzipped from Debian's xen-hypervisor-4.17-amd64
#   vmlinux          dom0 kernel, unpacked from Debian's linux-image bzImage
#   initrd.cpio.gz   a busybox initramfs whose /init prints a marker and powers off
# Needs: apt-get (Debian's archive), dpkg-deb, xz-utils, gzip, cpio, busybox-static.
set -eu
cd "$(dirname "$0")/.."
CACHE=${BOOTSTUB_CACHE:-cache}
mkdir -p "$CACHE"
cd "$CACHE"

if [ ! -f xen-4.17-amd64 ]; then
    ls xen-hypervisor-4.17-amd64_*.deb >/dev/null 2>&1 || apt-get download xen-hypervisor-4.17-amd64
    mkdir -p x && dpkg-deb -x xen-hypervisor-4.17-amd64_*.deb x
    gunzip -c x/boot/xen-4.17-amd64.gz > xen-4.17-amd64.tmp && mv xen-4.17-amd64.tmp xen-4.17-amd64
fi

if [ ! -f vmlinux ]; then
    kernel=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -n1)
    [ -n "$kernel" ] || { echo "fetch-test-inputs: no linux-image-6.1.0-*-amd64 known to apt" >&2; exit 1; }
    ls "${kernel}"_*.deb >/dev/null 2>&1 || apt-get download "$kernel"
    mkdir -p x && dpkg-deb --fsys-tarfile "${kernel}"_*.deb | tar -x -C x ./boot
    bz=$(ls x/boot/vmlinuz-* | head -n1)
    # bzImage: the compressed vmlinux starts at (setup_sects + 1) * 512 +
    # payload_offset, payload_length bytes long (Documentation/x86/boot.rst).
    setup_sects=$(od -An -tu1 -j 497 -N1 "$bz" | tr -d ' ')
    payload_offset=$(od -An -tu4 -j 584 -N4 "$bz" | tr -d ' ')
    payload_length=$(od -An -tu4 -j 588 -N4 "$bz" | tr -d ' ')
    start=$(( (setup_sects + 1) * 512 + payload_offset ))
    magic=$(tail -c +$((start + 1)) "$bz" | head -c 2 | od -An -tx1 | tr -d ' ')
    case $magic in
        fd37) unpack="xz -dc" ;;
        1f8b) unpack="gzip -dc" ;;
        28b5) unpack="zstd -dc" ;;
        *) echo "fetch-test-inputs: unknown kernel compression $magic" >&2; exit 1 ;;
    esac
    # xz/zstd complain about the size field appended after the stream.
    tail -c +$((start + 1)) "$bz" | head -c "$payload_length" | $unpack > vmlinux.tmp 2>/dev/null || true
    head -c 4 vmlinux.tmp | od -An -tx1 | grep -q '7f 45 4c 46' || { echo "fetch-test-inputs: vmlinux extraction failed" >&2; exit 1; }
    mv vmlinux.tmp vmlinux
fi

if [ ! -f initrd.cpio.gz ]; then
    rm -rf initramfs && mkdir -p initramfs/bin initramfs/proc initramfs/sys initramfs/dev
    cp /bin/busybox initramfs/bin/busybox
    for tool in sh mount echo poweroff cat sleep; do ln -s busybox initramfs/bin/$tool; done
    cat > initramfs/init <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo "bootstub-test: dom0 init reached, kernel $(/bin/busybox uname -r)"
echo "bootstub-test: cmdline $(/bin/busybox cat /proc/cmdline)"
/bin/busybox poweroff -f
INIT
    chmod +x initramfs/init
    (cd initramfs && find . | cpio -o -H newc --quiet | gzip -9) > initrd.cpio.gz
    rm -rf initramfs
fi
ls -l xen-4.17-amd64 vmlinux initrd.cpio.gz
