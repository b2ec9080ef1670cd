#!/bin/sh
# End-to-end checks of the boot stub under QEMU (TCG, -cpu Nehalem, 2 GiB):
#   stub         multiboot1: QEMU -kernel bootstub.elf -initrd "xen …,vmlinux …,initrd"
#   grub         multiboot2: a GRUB rescue ISO (grub-mkrescue) with multiboot2/module2
#   stub-tamper  multiboot1 with one byte of vmlinux flipped: the stub names the
#                module, prints both digests and halts; Xen never starts
#   stub-missing multiboot1 without the initramfs: the stub names it and halts
#   insecure     the same tampered copy with "insecure": loud warning, Xen boots
#   all          every scenario above (default)
# Exit status: the number of failed scenarios; each prints PASS or FAIL.
# Inputs come from bootstub/fetch-test-inputs.sh (cache/); outputs and serial
# logs go to $BUILD/bootstub-test (BUILD defaults to build).
set -eu
cd "$(dirname "$0")/.."
CACHE=${BOOTSTUB_CACHE:-cache}
BUILD=${BUILD:-build}
OUT=$BUILD/bootstub-test
QEMU_TIMEOUT=${QEMU_TIMEOUT:-240}
XEN_ARGS="console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all dom0_max_vcpus=1"
DOM0_ARGS="console=hvc0"

mkdir -p "$OUT"
[ -f "$CACHE/xen-4.17-amd64" ] && [ -f "$CACHE/vmlinux" ] && [ -f "$CACHE/initrd.cpio.gz" ] ||
    sh bootstub/fetch-test-inputs.sh
XEN=$CACHE/xen-4.17-amd64
VMLINUX=$CACHE/vmlinux
INITRD=$CACHE/initrd.cpio.gz

make -s -f bootstub/bootstub.mk BUILD="$OUT" STUB_XEN="$XEN" STUB_DOM0_KERNEL="$VMLINUX" \
    STUB_INITRD="$INITRD" "$OUT/bootstub.elf"
STUB=$OUT/bootstub.elf

# run_qemu LOG SUCCESS_PATTERN FAILURE_PATTERN QEMU_ARGS...
# Boots QEMU with the serial line in LOG until SUCCESS_PATTERN or
# FAILURE_PATTERN appears, QEMU exits, or the timeout passes; the result is
# 0 only for SUCCESS_PATTERN. QEMU is stopped by its own PID.
run_qemu() {
    log=$1 success=$2 failure=$3
    shift 3
    rm -f "$log"
    : > "$log"
    timeout "$QEMU_TIMEOUT" qemu-system-x86_64 -machine pc,accel=tcg -cpu Nehalem -m 2048 -smp 1 \
        -display none -vga std -net none -no-reboot -serial "file:$log" "$@" 2>"$log.stderr" &
    qemu=$!
    start=$(date +%s)
    result=1
    while kill -0 "$qemu" 2>/dev/null; do
        if grep -aq -- "$success" "$log"; then result=0; break; fi
        if [ -n "$failure" ] && grep -aq -- "$failure" "$log"; then break; fi
        sleep 1
    done
    grep -aq -- "$success" "$log" && result=0
    kill "$qemu" 2>/dev/null || true
    wait "$qemu" 2>/dev/null || true
    echo "  ($(($(date +%s) - start)) s, serial log $log)"
    return $result
}

expect_line() {
    if grep -aq -- "$2" "$1"; then return 0; fi
    echo "  missing in $1: $2"
    return 1
}

# QEMU splits -initrd at commas; ",," is a literal comma.
qemu_modules() {
    echo "$1 $(echo "$XEN_ARGS" | sed 's/,/,,/g'),$2 $DOM0_ARGS,$3"
}

scenario_stub() {
    echo "stub: multiboot1 through QEMU -kernel"
    log=$OUT/stub.log
    run_qemu "$log" "bootstub-test: dom0 init reached" "bootstub: halted" \
        -kernel "$STUB" -initrd "$(qemu_modules "$XEN" "$VMLINUX" "$INITRD")" || return 1
    expect_line "$log" "bootstub: Proxenos boot stub, entered through multiboot1" &&
        expect_line "$log" "bootstub: module 0 xen xen-4.17-amd64 .* bytes: sha256 ok" &&
        expect_line "$log" "bootstub: module 1 dom0-kernel vmlinux .* bytes: sha256 ok" &&
        expect_line "$log" "bootstub: module 2 initrd initrd.cpio.gz .* bytes: sha256 ok" &&
        expect_line "$log" "bootstub: jumping to xen at 0x00200000" &&
        expect_line "$log" "Xen version 4.17" &&
        expect_line "$log" "Linux version 6.1"
}

scenario_grub() {
    echo "grub: multiboot2 through a GRUB rescue ISO"
    iso=$OUT/iso
    rm -rf "$iso" && mkdir -p "$iso/boot/grub"
    cp "$STUB" "$iso/boot/bootstub.elf"
    cp "$XEN" "$iso/boot/xen"
    cp "$VMLINUX" "$iso/boot/vmlinux"
    cp "$INITRD" "$iso/boot/initrd.gz"
    cat > "$iso/boot/grub/grub.cfg" <<CFG
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
set default=0
menuentry "Proxenos" {
    multiboot2 /boot/bootstub.elf
    module2 /boot/xen $XEN_ARGS
    module2 /boot/vmlinux $DOM0_ARGS
    module2 /boot/initrd.gz
}
CFG
    grub-mkrescue -o "$OUT/stub.iso" "$iso" >"$OUT/grub-mkrescue.log" 2>&1 ||
        { cat "$OUT/grub-mkrescue.log"; return 1; }
    log=$OUT/grub.log
    run_qemu "$log" "bootstub-test: dom0 init reached" "bootstub: halted" \
        -cdrom "$OUT/stub.iso" -boot d || return 1
    expect_line "$log" "bootstub: Proxenos boot stub, entered through multiboot2" &&
        expect_line "$log" "bootstub: loader \"GRUB 2" &&
        expect_line "$log" "bootstub: module 0 xen xen-4.17-amd64 .* bytes: sha256 ok" &&
        expect_line "$log" "bootstub: module 1 dom0-kernel vmlinux .* bytes: sha256 ok" &&
        expect_line "$log" "bootstub: module 2 initrd initrd.cpio.gz .* bytes: sha256 ok (gunzipped by the loader)" &&
        expect_line "$log" "bootstub: jumping to xen at 0x00200000" &&
        expect_line "$log" "Xen version 4.17" &&
        expect_line "$log" "Linux version 6.1"
}

tampered_copy() {
    cp "$VMLINUX" "$OUT/vmlinux"
    # Flip every bit of one byte in the middle of the kernel.
    size=$(stat -c %s "$OUT/vmlinux")
    at=$((size / 2))
    byte=$(od -An -tu1 -j "$at" -N1 "$OUT/vmlinux" | tr -d ' ')
    printf "$(printf '\\%03o' $((255 - byte)))" |
        dd of="$OUT/vmlinux" bs=1 seek="$at" conv=notrunc status=none
    cmp -s "$VMLINUX" "$OUT/vmlinux" && { echo "  tampering failed"; return 1; }
    return 0
}

scenario_stub_tamper() {
    echo "stub-tamper: one byte of vmlinux flipped"
    tampered_copy || return 1
    log=$OUT/stub-tamper.log
    run_qemu "$log" "bootstub: halted" "Xen version" \
        -kernel "$STUB" -initrd "$(qemu_modules "$XEN" "$OUT/vmlinux" "$INITRD")" || return 1
    expected=$(openssl dgst -sha256 -r "$VMLINUX" | cut -c1-64)
    actual=$(openssl dgst -sha256 -r "$OUT/vmlinux" | cut -c1-64)
    expect_line "$log" "bootstub: MISMATCH module 1 dom0-kernel vmlinux" &&
        expect_line "$log" "bootstub:   expected sha256 $expected" &&
        expect_line "$log" "bootstub:   actual   sha256 $actual" &&
        expect_line "$log" "bootstub: REFUSING TO BOOT: 1 module(s) failed verification" &&
        ! grep -aq "Xen version" "$log"
}

scenario_stub_missing() {
    echo "stub-missing: the initramfs module left out"
    log=$OUT/stub-missing.log
    run_qemu "$log" "bootstub: halted" "Xen version" \
        -kernel "$STUB" -initrd "$XEN $(echo "$XEN_ARGS" | sed 's/,/,,/g'),$VMLINUX $DOM0_ARGS" || return 1
    expected=$(openssl dgst -sha256 -r "$INITRD" | cut -c1-64)
    expect_line "$log" "bootstub: MISSING module 2 initrd initrd.cpio.gz: the loader passed only 2 modules" &&
        expect_line "$log" "bootstub:   expected sha256 $expected" &&
        expect_line "$log" "bootstub:   actual   sha256 none (module absent)" &&
        expect_line "$log" "bootstub: REFUSING TO BOOT: 1 module(s) failed verification" &&
        ! grep -aq "Xen version" "$log"
}

scenario_insecure() {
    echo "insecure: tampered vmlinux, stub command line \"insecure\""
    tampered_copy || return 1
    log=$OUT/insecure.log
    run_qemu "$log" "Xen version 4.17" "bootstub: halted" \
        -kernel "$STUB" -append "insecure" \
        -initrd "$(qemu_modules "$XEN" "$OUT/vmlinux" "$INITRD")" || return 1
    expect_line "$log" "bootstub: WARNING: INSECURE BOOT: 1 module(s) failed verification" &&
        expect_line "$log" "bootstub: jumping to xen"
}

failed=0
scenarios=${*:-all}
[ "$scenarios" = all ] && scenarios="stub grub stub-tamper stub-missing insecure"
for s in $scenarios; do
    case $s in
        stub) scenario_stub ;;
        grub) scenario_grub ;;
        stub-tamper) scenario_stub_tamper ;;
        stub-missing) scenario_stub_missing ;;
        insecure) scenario_insecure ;;
        *) echo "unknown scenario $s"; false ;;
    esac && echo "PASS $s" || { echo "FAIL $s"; failed=$((failed + 1)); }
done
exit $failed
