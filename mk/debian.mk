# Debian artifacts the appliance is built from, pinned in this one place.
# `image/fetch-debs` downloads exactly these into $(CACHE)/debs; if Debian has
# since replaced a version (bookworm keeps only the newest of a point
# release), it says so loudly and takes the current one instead.
DEBIAN_XEN_VERSION     := 4.17.7+13-g2445b30a44-0+deb12u1
DEBIAN_KERNEL_ABI      := 6.1.0-56
DEBIAN_KERNEL_VERSION  := 6.1.192-2
DEBIAN_BUSYBOX_VERSION := 1:1.35.0-4+deb12u1+b1

# package=version, one per artifact.
DEBIAN_PACKAGES := \
	xen-hypervisor-4.17-amd64=$(DEBIAN_XEN_VERSION) \
	xen-utils-4.17=$(DEBIAN_XEN_VERSION) \
	linux-image-$(DEBIAN_KERNEL_ABI)-amd64=$(DEBIAN_KERNEL_VERSION) \
	busybox-static=$(DEBIAN_BUSYBOX_VERSION)

# Build and test dependencies `make deps` installs (Debian package names).
DEBIAN_BUILD_DEPS := \
	qemu-system-x86 grub-pc-bin grub-common xorriso mtools cpio kmod xz-utils zstd \
	libxen-dev libnl-3-dev libnl-route-3-dev libnftables-dev libpcap-dev libssl-dev \
	iproute2 nftables iputils-ping xenstore-utils binutils pkg-config python3 openssl
