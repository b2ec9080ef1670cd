# bootstub/bootstub.mk — the Embedded Swift boot stub, included by the
# top-level Makefile (or used alone: make -f bootstub/bootstub.mk ...).
#
# Inputs:
#   BUILD             build directory (e.g. build)
#   STUB_XEN          uncompressed Xen ELF image the stub loads (module 0)
#   STUB_DOM0_KERNEL  dom0 kernel, vmlinux (module 1)
#   STUB_INITRD       dom0 initramfs, .cpio.gz (module 2)
# Output: $(BUILD)/bootstub.elf, whose built-in manifest holds the sizes and
# SHA-256 digests of exactly these three files.

# Keep whatever default goal the including Makefile has.
bootstub_saved_goal := $(.DEFAULT_GOAL)

BUILD ?= build
STUB_TOOLCHAIN ?= /opt/swift/usr/bin
STUB_SWIFTC ?= $(STUB_TOOLCHAIN)/swiftc
STUB_CLANG ?= $(STUB_TOOLCHAIN)/clang
STUB_LLD ?= $(STUB_TOOLCHAIN)/ld.lld
STUB_MAX_BYTES ?= 65536

BOOTSTUB_SOURCES := $(wildcard bootstub/*.swift) $(wildcard Sources/BootStubCore/*.swift)
BOOTSTUB_SWIFTFLAGS := -enable-experimental-feature Embedded -enable-experimental-feature Extern \
	-target i686-unknown-none-elf -Osize -wmo -parse-as-library -module-name BootStub \
	-Xfrontend -disable-stack-protector -Xfrontend -function-sections \
	-target-cpu i686

$(BUILD)/bootstub/BuiltInManifest.swift: bootstub/gen-manifest.sh $(STUB_XEN) $(STUB_DOM0_KERNEL) $(STUB_INITRD)
	@test -n "$(STUB_XEN)" -a -n "$(STUB_DOM0_KERNEL)" || { echo "bootstub: set STUB_XEN and STUB_DOM0_KERNEL" >&2; exit 1; }
	mkdir -p $(@D)
	sh bootstub/gen-manifest.sh $(STUB_XEN) $(STUB_DOM0_KERNEL) $(STUB_INITRD) > $@.tmp
	mv $@.tmp $@

$(BUILD)/bootstub/stub.o: $(BOOTSTUB_SOURCES) $(BUILD)/bootstub/BuiltInManifest.swift bootstub/bootstub.mk
	$(STUB_SWIFTC) $(BOOTSTUB_SWIFTFLAGS) -c $(BOOTSTUB_SOURCES) $(BUILD)/bootstub/BuiltInManifest.swift -o $@

$(BUILD)/bootstub/entry.o: bootstub/entry.S bootstub/bootstub.mk
	mkdir -p $(@D)
	$(STUB_CLANG) --target=i686-unknown-none-elf -c $< -o $@

$(BUILD)/bootstub.elf: $(BUILD)/bootstub/entry.o $(BUILD)/bootstub/stub.o bootstub/linker.ld
	$(STUB_LLD) -m elf_i386 -static -nostdlib -N --gc-sections -T bootstub/linker.ld \
		-o $(BUILD)/bootstub/bootstub.debug.elf $(BUILD)/bootstub/entry.o $(BUILD)/bootstub/stub.o
	$(STUB_TOOLCHAIN)/llvm-objcopy --strip-all $(BUILD)/bootstub/bootstub.debug.elf $@
	@size=$$(stat -c %s $@); echo "bootstub: $@ is $$size bytes"; \
	  test $$size -lt $(STUB_MAX_BYTES) || { echo "bootstub: larger than $(STUB_MAX_BYTES) bytes" >&2; rm -f $@; exit 1; }

.PHONY: bootstub
bootstub: $(BUILD)/bootstub.elf

.DEFAULT_GOAL := $(bootstub_saved_goal)
