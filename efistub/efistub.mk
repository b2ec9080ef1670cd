# efistub/efistub.mk — the boot stub as a UEFI application (bootstub.efi),
# included by the top-level Makefile after bootstub/bootstub.mk.
#
# Inputs:
#   BUILD              build directory
#   EFI_XEN            Xen's EFI image (module 0, started with LoadImage)
#   STUB_DOM0_KERNEL   dom0 kernel (module 1), as for the BIOS stub
#   STUB_INITRD        dom0 initramfs (module 2)
#   EFI_XEN_CFG        xen.cfg (module 3): command lines and file names for xen.efi
# Output: $(BUILD)/bootstub.efi, a PE32+ x86_64 EFI application whose
# manifest names these four files.
#
# Embedded Swift ships no Windows/UEFI standard library, so the Swift code is
# compiled for x86_64-unknown-none-elf to LLVM IR and the IR is retargeted to
# x86_64-unknown-windows-gnu (only the triple and the symbol mangling in the
# data layout differ for x86_64): clang then emits COFF with the Microsoft
# x64 calling convention UEFI uses, and lld-link makes the PE image.

efistub_saved_goal := $(.DEFAULT_GOAL)

EFI_MAX_BYTES ?= 131072
STUB_LLD_LINK ?= $(STUB_TOOLCHAIN)/lld-link

EFISTUB_SOURCES := $(wildcard efistub/*.swift) bootstub/Hardware.swift \
	$(wildcard Sources/BootStubCore/*.swift)
EFISTUB_SWIFTFLAGS := -enable-experimental-feature Embedded -enable-experimental-feature Extern \
	-target x86_64-unknown-none-elf -Osize -wmo -parse-as-library -module-name BootStub \
	-Xfrontend -disable-stack-protector -Xfrontend -function-sections
EFI_DATALAYOUT := e-m:w-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128

$(BUILD)/efistub/inputs: bootstub-inputs-changed
	@mkdir -p $(@D)
	@echo "$(EFI_XEN) $(STUB_DOM0_KERNEL) $(STUB_INITRD) $(EFI_XEN_CFG)" > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

$(BUILD)/efistub/BuiltInManifest.swift: bootstub/gen-manifest.sh $(BUILD)/efistub/inputs \
		$(EFI_XEN) $(STUB_DOM0_KERNEL) $(STUB_INITRD) $(EFI_XEN_CFG)
	mkdir -p $(@D)
	sh bootstub/gen-manifest.sh $(EFI_XEN) $(STUB_DOM0_KERNEL) $(STUB_INITRD) $(EFI_XEN_CFG) > $@.tmp
	mv $@.tmp $@

$(BUILD)/efistub/stub.ll: $(EFISTUB_SOURCES) $(BUILD)/efistub/BuiltInManifest.swift efistub/efistub.mk
	$(STUB_SWIFTC) $(EFISTUB_SWIFTFLAGS) -emit-ir $(EFISTUB_SOURCES) \
		$(BUILD)/efistub/BuiltInManifest.swift -o $@.elf.ll
	sed -e 's/^target datalayout = .*/target datalayout = "$(EFI_DATALAYOUT)"/' \
	    -e 's/^target triple = .*/target triple = "x86_64-unknown-windows-gnu"/' $@.elf.ll > $@
	rm $@.elf.ll

$(BUILD)/efistub/stub.obj: $(BUILD)/efistub/stub.ll
	$(STUB_CLANG) --target=x86_64-unknown-windows-gnu -Os -ffunction-sections -c $< -o $@

$(BUILD)/efistub/entry.obj: efistub/entry.S efistub/efistub.mk
	mkdir -p $(@D)
	$(STUB_CLANG) --target=x86_64-unknown-windows-gnu -c $< -o $@

$(BUILD)/bootstub.efi: $(BUILD)/efistub/entry.obj $(BUILD)/efistub/stub.obj
	$(STUB_LLD_LINK) /subsystem:efi_application /entry:efi_main /nodefaultlib /opt:ref \
		/out:$@ $(BUILD)/efistub/entry.obj $(BUILD)/efistub/stub.obj
	@size=$$(stat -c %s $@); echo "bootstub: $@ is $$size bytes"; \
	  test $$size -lt $(EFI_MAX_BYTES) || { echo "bootstub: $@ larger than $(EFI_MAX_BYTES) bytes" >&2; rm -f $@; exit 1; }

.PHONY: efistub
efistub: $(BUILD)/bootstub.efi

.DEFAULT_GOAL := $(efistub_saved_goal)
