# Proxenos: build, boot and test the Xen dom0 appliance.
#
#   make deps    install missing build and test dependencies (apt-get)
#   make image   build Xen, dom0 kernel, initramfs; print artifact sizes
#   make sizes   where the dom0 archive's bytes go (files, Swift modules)
#   make iso     a hybrid image that boots the appliance on BIOS (GRUB) and UEFI (bootstub.efi)
#   make pxe     a TFTP tree that network-boots it (iPXE script, GRUB netboot)
#   make run     boot the ISO in QEMU with its serial console here
#   make test    every test: unit, host integration, and the QEMU smoke test
#   make smoke   the QEMU smoke scenarios (ONLY=name selects one)
#   make bench   our toolstack and backends against the reference, as ratios
#   make clean   remove build outputs (keeps downloaded packages)

BUILD ?= build
CACHE ?= cache
SRC := $(CURDIR)

include mk/debian.mk

# Xen's and dom0's command lines (both GRUB entries).
# bootscrub=1: Xen clears free RAM before dom0 starts instead of in the
# background (the default, `idle`). Under TCG the background scrubber
# slowed dom0's boot from 14 s to 24 s; scrubbing first costs about 3 s per
# GiB free there and keeps the guarantee that no guest sees memory from
# before the reboot. On hosts with much RAM, `bootscrub=idle` boots sooner.
XEN_CMDLINE ?= console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M dom0_max_vcpus=2 \
	bootscrub=1 loglvl=warning guest_loglvl=warning
# Under TCG, crypto self-tests (cryptomgr, kdf108), the ACPI PM timer check
# and PCI probing through MMCONFIG cost dom0 over 10 s of boot. Drop
# pci=nommconf on hardware whose devices need PCIe extended config space.
# SWIFT_DETERMINISTIC_HASHING=1 reaches PID 1's environment only (the
# kernel passes such words to init; PID 1 gives its children an environment
# of its own): every Swift process seeds its hashing from getrandom() as it
# loads, which blocks until the kernel's RNG is ready, and without RDRAND
# (QEMU's plain Nehalem) that took 1 s after /init started. PID 1's input is
# the image and this command line, so it goes on; one thread of it waits for
# the RNG and the Swift services start after (Sources/Init/KernelRandomness).
DOM0_CMDLINE ?= console=hvc0 quiet cryptomgr.notests pci=nommconf \
	initcall_blacklist=crypto_kdf108_init,init_acpi_pm_clocksource SWIFT_DETERMINISTIC_HASHING=1
# Seconds GRUB shows its menu (Esc during boot stops the countdown).
GRUB_TIMEOUT ?= 0
# QEMU: TCG only here; CPU models with SMAP crash a PV dom0 under TCG.
# +rdrand (TCG emulates it) as hardware has it: dom0's RNG is ready at once
# (init-to-ready 2.07 s against 2.78 s without, medians of 3 boots; the
# smoke's console session boots without it).
QEMU ?= qemu-system-x86_64
QEMU_MEM ?= 2048
QEMU_FLAGS ?= -machine q35 -cpu Nehalem,+rdrand -smp 2 -m $(QEMU_MEM) -no-reboot \
	-netdev user,id=net0,restrict=on -device e1000,netdev=net0
# Every QEMU run ends by this deadline (seconds).
RUN_TIMEOUT ?= 3600

SWIFT ?= swift
SWIFT_RELEASE_FLAGS := -c release --static-swift-stdlib --scratch-path .build-release
SMOKE_TIMEOUT ?= 900
ONLY ?=

DEBS := $(CACHE)/debs
KROOT := $(BUILD)/kernel
XENROOT := $(BUILD)/xenroot
BUSYBOX := $(BUILD)/busybox/bin/busybox
DROPBEAR := $(BUILD)/dropbear
# The kernel release, read in recipes once the kernel package is unpacked.
KVER = $$(ls $(KROOT)/lib/modules)

ISO := $(BUILD)/proxenos.iso
IMAGE_FILES := $(BUILD)/xen.gz $(BUILD)/xen $(BUILD)/vmlinux.lz4 $(BUILD)/initrd $(BUILD)/bootstub.elf
EFI_FILES := $(BUILD)/bootstub.efi $(BUILD)/efi/xen.efi $(BUILD)/efi/xen.cfg

# The boot stub verifies exactly these modules (its manifest is built in).
STUB_XEN := $(BUILD)/xen
STUB_DOM0_KERNEL := $(BUILD)/vmlinux.lz4
STUB_INITRD := $(BUILD)/initrd
include bootstub/bootstub.mk

# The UEFI stub verifies these and starts xen.efi, which reads xen.cfg.
EFI_XEN := $(BUILD)/efi/xen.efi
EFI_XEN_CFG := $(BUILD)/efi/xen.cfg
include efistub/efistub.mk

.PHONY: all deps image sizes iso pxe run test unit smoke bench clean distclean FORCE
.DELETE_ON_ERROR:

all: image

# ---------------------------------------------------------------- deps

deps:
	@missing=""; for p in $(DEBIAN_BUILD_DEPS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' \
			|| missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		sudo= ; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends $$missing; \
	else \
		echo "deps: all installed"; \
	fi
	@command -v $(SWIFT) >/dev/null || { echo "deps: no swift toolchain on PATH" >&2; exit 1; }

# ---------------------------------------------------------------- Debian artifacts

$(DEBS)/.fetched: mk/debian.mk image/fetch-debs
	image/fetch-debs $(DEBS) $(DEBIAN_PACKAGES)
	touch $@

$(KROOT)/.unpacked: $(DEBS)/.fetched
	rm -rf $(KROOT) && mkdir -p $(KROOT)
	dpkg-deb -x $(firstword $(wildcard $(DEBS)/linux-image-[0-9]*-amd64_*.deb)) $(KROOT)
	depmod -b $(KROOT) $$(ls $(KROOT)/lib/modules)
	touch $@

$(XENROOT)/.unpacked: $(DEBS)/.fetched
	rm -rf $(XENROOT) && mkdir -p $(XENROOT)
	for deb in $(DEBS)/xen-hypervisor-4.17-amd64_*.deb $(DEBS)/xen-utils-4.17_*.deb; do \
		dpkg-deb -x $$deb $(XENROOT); done
	touch $@

$(BUSYBOX): $(DEBS)/.fetched
	rm -rf $(BUILD)/busybox && mkdir -p $(BUILD)/busybox
	dpkg-deb -x $(DEBS)/busybox-static_*.deb $(BUILD)/busybox
	touch $@

# Debian's dropbear (SSH server and dropbearkey), unpacked for the image.
$(DROPBEAR)/.unpacked: $(DEBS)/.fetched
	rm -rf $(DROPBEAR) && mkdir -p $(DROPBEAR)
	dpkg-deb -x $(DEBS)/dropbear-bin_*.deb $(DROPBEAR)
	touch $@

# Debian's CA certificates (Mozilla's list) joined into the one file
# OpenSSL reads, as update-ca-certificates would: provisioning verifies an
# HTTPS bundle server against it.
CA_BUNDLE := $(BUILD)/ca-certificates.crt
$(CA_BUNDLE): $(DEBS)/.fetched
	rm -rf $(BUILD)/ca && mkdir -p $(BUILD)/ca
	dpkg-deb -x $(DEBS)/ca-certificates_*.deb $(BUILD)/ca
	cat $(BUILD)/ca/usr/share/ca-certificates/mozilla/*.crt > $@.tmp
	test -s $@.tmp && mv $@.tmp $@

# ---------------------------------------------------------------- our binary

SWIFT_SOURCES := Package.swift $(shell find Sources -type f 2>/dev/null)

$(BUILD)/proxenos: $(SWIFT_SOURCES)
	@mkdir -p $(BUILD)
	$(SWIFT) build $(SWIFT_RELEASE_FLAGS) --product proxenos
	strip -o $@ .build-release/release/proxenos

# ---------------------------------------------------------------- image

$(BUILD)/xen.gz: $(XENROOT)/.unpacked
	cp $(XENROOT)/boot/xen-4.17-amd64.gz $@

# The stub loads Xen's ELF itself: it gets Xen uncompressed.
$(BUILD)/xen: $(BUILD)/xen.gz
	gzip -dc $< > $@

# The ELF kernel, out of the bzImage (TCG is slow at its xz).
$(BUILD)/vmlinux: $(KROOT)/.unpacked image/extract-vmlinux.py
	image/extract-vmlinux.py $(KROOT)/boot/vmlinuz-$(KVER) $@

# Xen gets the dom0 kernel LZ4-compressed: GRUB reads and the stub hashes
# 15 MB instead of 66 MB, and Xen's unlz4 under TCG costs next to nothing
# (QEMU CPU from start to dom0's first instruction 9.4-9.8 s, raw vmlinux
# 14.3-17.0 s). gzip (11 MB) and zstd (9.7 MB) are smaller but Xen's gunzip
# and unzstd took 4-5 s longer. Legacy LZ4 frames (lz4 -l, as Linux's own
# build uses) with the decompressed size appended little-endian: Xen reads
# it from the last four bytes to reserve room for the output.
$(BUILD)/vmlinux.lz4: $(BUILD)/vmlinux
	lz4 -q -l -12 -c $< > $@.tmp
	python3 -c 'import os, struct, sys; sys.stdout.buffer.write(struct.pack("<I", os.path.getsize(sys.argv[1])))' $< >> $@.tmp
	mv $@.tmp $@

$(BUILD)/vmlinux.gz: $(BUILD)/vmlinux
	gzip -9 -n -c $< > $@

MKINITRAMFS = image/mkinitramfs.py -D SRC=$(SRC) -D BUILD=$(BUILD) -D KROOT=$(KROOT) \
	-D KVER=$(KVER) -D BUSYBOX=$(BUSYBOX) -D XENROOT=$(XENROOT) -D PROXENOS=$(BUILD)/proxenos \
	-D DROPBEAR=$(DROPBEAR) -D CA_BUNDLE=$(CA_BUNDLE)

INITRAMFS_INPUTS := image/mkinitramfs.py $(shell find initramfs -type f) \
	$(KROOT)/.unpacked $(BUSYBOX)

# zstd: smaller than gzip and several times faster to unpack under TCG.
$(BUILD)/dom0.cpio.zst: $(INITRAMFS_INPUTS) $(XENROOT)/.unpacked $(BUILD)/proxenos \
		$(DROPBEAR)/.unpacked $(CA_BUNDLE)
	$(MKINITRAMFS) initramfs/dom0.list $(BUILD)/dom0.cpio
	zstd -q -f -19 -T0 --rm $(BUILD)/dom0.cpio -o $@

$(BUILD)/demo-guest.cpio.gz: $(INITRAMFS_INPUTS)
	$(MKINITRAMFS) initramfs/demo/guest.list $@

# Its files are compressed already: zstd -3 only frames them. (An
# uncompressed cpio before a zstd one trips the 6.1 kernel's unpacker.)
$(BUILD)/demo.cpio.zst: $(BUILD)/vmlinux.gz $(BUILD)/demo-guest.cpio.gz initramfs/demo/bundle.list
	$(MKINITRAMFS) initramfs/demo/bundle.list $(BUILD)/demo.cpio
	zstd -q -f -3 --rm $(BUILD)/demo.cpio -o $@

# The kernel unpacks concatenated compressed cpio archives one after another.
$(BUILD)/initrd: $(BUILD)/dom0.cpio.zst $(BUILD)/demo.cpio.zst
	cat $^ > $@

image: $(IMAGE_FILES) $(EFI_FILES)
	@for f in xen.gz xen vmlinux vmlinux.lz4 dom0.cpio.zst demo.cpio.zst initrd proxenos bootstub.elf bootstub.efi; do \
		echo "size $$f $$(stat -c %s $(BUILD)/$$f)"; done

# Where the dom0 archive's bytes go: per group of files (each compressed
# on its own) and per Swift module of the binary.
sizes: $(BUILD)/dom0.cpio.zst
	image/size-report.py $(BUILD)/dom0.cpio.zst .build-release/release/proxenos

# ---------------------------------------------------------------- ISO

# Regenerated on every run, replaced only when the command lines changed.
$(BUILD)/iso/boot/grub/grub.cfg: image/grub.cfg.in FORCE
	@mkdir -p $(dir $@)
	@sed -e 's|@XEN_CMDLINE@|$(strip $(XEN_CMDLINE))|' \
	    -e 's|@DOM0_CMDLINE@|$(strip $(DOM0_CMDLINE))|' \
	    -e 's|@GRUB_TIMEOUT@|$(strip $(GRUB_TIMEOUT))|' $< > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; echo "grub.cfg updated"; fi

FORCE:

# ---------------------------------------------------------------- UEFI

$(EFI_XEN): $(XENROOT)/.unpacked
	@mkdir -p $(@D)
	cp $(XENROOT)/boot/xen-4.17-amd64.efi $@

# xen.efi's configuration (its own file format: xen.efi reads the section
# [global] names, then that section's Xen options, dom0 kernel with its
# command line, and ramdisk). Rewritten only when the command lines changed.
$(EFI_XEN_CFG): FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '# Generated by the Makefile: xen.efi reads this; the UEFI stub checks it.' \
	  '[global]' 'default=proxenos' '' '[proxenos]' \
	  'options=$(strip $(XEN_CMDLINE))' \
	  'kernel=$(notdir $(STUB_DOM0_KERNEL)) $(strip $(DOM0_CMDLINE))' \
	  'ramdisk=$(notdir $(STUB_INITRD))' > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; echo "xen.cfg updated"; fi

# The EFI system partition: FAT with the stub as the removable-media
# default (\EFI\BOOT\BOOTX64.EFI) and everything it names beside it.
ESP := $(BUILD)/esp.img
ESP_FILES := $(EFI_FILES) $(STUB_DOM0_KERNEL) $(STUB_INITRD)
$(ESP): $(ESP_FILES)
	rm -f $@.tmp
	kib=$$(du -kc $(ESP_FILES) | tail -1 | cut -f1); \
	  truncate -s $$(( (kib + kib / 16 + 2048) / 1024 ))M $@.tmp
	mformat -i $@.tmp -v PROXENOS ::
	mmd -i $@.tmp ::/EFI ::/EFI/BOOT
	mcopy -i $@.tmp $(BUILD)/bootstub.efi ::/EFI/BOOT/BOOTX64.EFI
	mcopy -i $@.tmp $(EFI_XEN) $(EFI_XEN_CFG) $(STUB_DOM0_KERNEL) $(STUB_INITRD) ::/EFI/BOOT/
	mv $@.tmp $@

# GRUB for BIOS only (-d): UEFI firmware boots the appended ESP through the
# second El Torito entry (CD) or the partition table (USB stick).
$(ISO): $(IMAGE_FILES) $(BUILD)/iso/boot/grub/grub.cfg $(ESP)
	find $(BUILD)/iso/boot -maxdepth 1 -type f -delete
	cp $(IMAGE_FILES) $(BUILD)/iso/boot/
	grub-mkrescue -d /usr/lib/grub/i386-pc -o $@ $(BUILD)/iso \
		-append_partition 2 0xef $(ESP) \
		-eltorito-alt-boot -e --interval:appended_partition_2:all:: -no-emul-boot \
		> $(BUILD)/grub-mkrescue.log 2>&1 \
		|| { cat $(BUILD)/grub-mkrescue.log; exit 1; }
	@echo "size proxenos.iso $$(stat -c %s $@)"

iso: $(ISO)

# ---------------------------------------------------------------- PXE

# A TFTP tree with the ISO's layout (boot/ holds the image files), so one
# server boots a host two ways: firmware or iPXE fetching proxenos.ipxe
# (the bootstub as the multiboot kernel, the same modules and command lines
# as the ISO's default entry), or GRUB's network image
# (boot/grub/i386-pc/core.0) with the ISO's menu. README: dnsmasq set-up.
PXE := $(BUILD)/pxe
PXE_IPXE := $(PXE)/proxenos.ipxe

# iPXE's multiboot loader keeps every command line in one 512-byte buffer
# (names included): the script is refused if it would not fit.
$(PXE_IPXE): image/proxenos.ipxe.in FORCE
	@mkdir -p $(dir $@)
	@sed -e 's|@XEN_CMDLINE@|$(strip $(XEN_CMDLINE))|' \
	    -e 's|@DOM0_CMDLINE@|$(strip $(DOM0_CMDLINE))|' $< > $@.new
	@length=$$(printf 'bootstub.elf xen %s vmlinux.lz4 %s initrd ' \
	    "$(strip $(XEN_CMDLINE))" "$(strip $(DOM0_CMDLINE))" | wc -c); \
	  test $$length -lt 508 || { echo "pxe: command lines of $$length bytes overflow iPXE's 512-byte multiboot buffer" >&2; rm -f $@.new; exit 1; }
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; echo "proxenos.ipxe updated"; fi

$(PXE)/boot/grub/grub.cfg: $(BUILD)/iso/boot/grub/grub.cfg
	@mkdir -p $(dir $@)
	cp $< $@

# grub-mknetdir (grub-pc-bin) writes core.0 with the prefix (pxe)/boot/grub.
$(PXE)/boot/grub/i386-pc/core.0:
	grub-mknetdir --net-directory=$(PXE) --subdir=boot/grub -d /usr/lib/grub/i386-pc \
		> $(BUILD)/grub-mknetdir.log 2>&1 || { cat $(BUILD)/grub-mknetdir.log; exit 1; }

$(PXE)/.files: $(IMAGE_FILES)
	@mkdir -p $(PXE)/boot
	cp $(IMAGE_FILES) $(PXE)/boot/
	touch $@

# UEFI: the ESP's EFI files under efi/ (the dom0 files are boot/'s), the
# script iPXE's EFI build runs, Debian's iPXE for chain-loading (snponly.efi
# for UEFI PXE, undionly.kpxe for a BIOS PXE ROM) and the dnsmasq
# configuration that tells the clients apart.
IPXE_BINARIES := /usr/lib/ipxe/snponly.efi /usr/lib/ipxe/undionly.kpxe
$(PXE)/.efi-files: $(EFI_FILES) $(IPXE_BINARIES) image/proxenos-efi.ipxe image/dnsmasq-proxenos.conf
	@mkdir -p $(PXE)/efi
	cp $(EFI_FILES) $(PXE)/efi/
	cp $(IPXE_BINARIES) image/proxenos-efi.ipxe image/dnsmasq-proxenos.conf $(PXE)/
	touch $@

pxe: $(PXE)/.files $(PXE)/.efi-files $(PXE_IPXE) $(PXE)/boot/grub/grub.cfg $(PXE)/boot/grub/i386-pc/core.0
	@echo "pxe: TFTP root $(PXE): proxenos.ipxe (iPXE) or boot/grub/i386-pc/core.0 (GRUB); UEFI: snponly.efi, then proxenos-efi.ipxe; dnsmasq: dnsmasq-proxenos.conf"

# ---------------------------------------------------------------- bench

# The bench image: the default image plus Debian's xl (the reference), booted
# by GRUB's direct entry (the stub's manifest names the default initrd).
BENCH_ISO := $(BUILD)/bench.iso

$(BUILD)/bench.cpio.zst: initramfs/bench.list image/mkinitramfs.py $(XENROOT)/.unpacked
	$(MKINITRAMFS) initramfs/bench.list $(BUILD)/bench.cpio
	zstd -q -f -19 -T0 --rm $(BUILD)/bench.cpio -o $@

$(BUILD)/bench-iso/boot/initrd: $(BUILD)/dom0.cpio.zst $(BUILD)/demo.cpio.zst $(BUILD)/bench.cpio.zst
	@mkdir -p $(dir $@)
	cat $^ > $@

# Like the default ISO's: rewritten only when the command lines changed.
$(BUILD)/bench-iso/boot/grub/grub.cfg: image/grub.cfg.in FORCE
	@mkdir -p $(dir $@)
	@sed -e 's|@XEN_CMDLINE@|$(strip $(XEN_CMDLINE))|' \
	    -e 's|@DOM0_CMDLINE@|$(strip $(DOM0_CMDLINE))|' \
	    -e 's|@GRUB_TIMEOUT@|0|' -e 's|^set default=0|set default=1|' $< > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; echo "bench grub.cfg updated"; fi

$(BENCH_ISO): $(BUILD)/bench-iso/boot/initrd $(BUILD)/xen.gz $(BUILD)/vmlinux.lz4 \
		$(BUILD)/bench-iso/boot/grub/grub.cfg
	cp $(BUILD)/xen.gz $(BUILD)/vmlinux.lz4 $(BUILD)/bench-iso/boot/
	grub-mkrescue -o $@ $(BUILD)/bench-iso > $(BUILD)/grub-mkrescue-bench.log 2>&1 \
		|| { cat $(BUILD)/grub-mkrescue-bench.log; exit 1; }

# Ratios of ours against the reference (kernel backends, Debian's xl), all
# measured in one QEMU run; ONLY=name selects a scenario.
bench: deps
	$(MAKE) $(BENCH_ISO)
	python3 Tests/bench/bench.py --iso $(BENCH_ISO) --build $(BUILD) \
		--qemu "$(QEMU) $(QEMU_FLAGS)" $(if $(ONLY),--only $(ONLY))

# ---------------------------------------------------------------- run and test

run: deps
	$(MAKE) iso
	@echo "run: serial console follows; 'poweroff' ends it, Ctrl-A X quits QEMU at once"
	timeout --foreground $(RUN_TIMEOUT) $(QEMU) $(QEMU_FLAGS) -nographic -cdrom $(ISO)

# BOOTSTUB_XEN: the stub's load-plan test reads Debian's real Xen image;
# DROPBEARKEY: the SSH launcher's tests make and read keys with Debian's.
# The watchdog ends a hung suite after UNIT_LIMIT seconds with the tests
# that never finished and the threads' stacks (the suite takes about 50 s).
UNIT_LIMIT ?= 480
unit: $(BUILD)/xen $(DROPBEAR)/.unpacked
	$(SWIFT) build --build-tests
	BOOTSTUB_XEN=$(CURDIR)/$(BUILD)/xen DROPBEARKEY=$(CURDIR)/$(DROPBEAR)/usr/bin/dropbearkey \
		python3 Tests/unit/watchdog.py --limit $(UNIT_LIMIT) -- $(SWIFT) test --skip-build

smoke: $(ISO) pxe
	python3 Tests/smoke/smoke.py --iso $(ISO) --build $(BUILD) --timeout $(SMOKE_TIMEOUT) \
		--qemu "$(QEMU) $(QEMU_FLAGS)" $(if $(ONLY),--only $(ONLY))

test: deps
	$(MAKE) unit
	$(MAKE) smoke

clean:
	rm -rf $(BUILD)

distclean: clean
	rm -rf $(CACHE) .build .build-release
