# Debian artifacts the appliance is built from, pinned in this one place.
# `image/fetch-debs` downloads exactly these into $(CACHE)/debs; if Debian has
# since replaced a version (bookworm keeps only the newest of a point
# release), it says so loudly and takes the current one instead.
DEBIAN_XEN_VERSION     := 4.17.7+13-g2445b30a44-0+deb12u1
DEBIAN_KERNEL_ABI      := 6.1.0-56
DEBIAN_KERNEL_VERSION  := 6.1.192-2
DEBIAN_BUSYBOX_VERSION := 1:1.35.0-4+deb12u1+b1
DEBIAN_DROPBEAR_VERSION := 2022.83-1+deb12u3
DEBIAN_CA_VERSION       := 20250419~deb12u2

# package=version, one per artifact.
DEBIAN_PACKAGES := \
	xen-hypervisor-4.17-amd64=$(DEBIAN_XEN_VERSION) \
	xen-utils-4.17=$(DEBIAN_XEN_VERSION) \
	linux-image-$(DEBIAN_KERNEL_ABI)-amd64=$(DEBIAN_KERNEL_VERSION) \
	busybox-static=$(DEBIAN_BUSYBOX_VERSION) \
	dropbear-bin=$(DEBIAN_DROPBEAR_VERSION) \
	ca-certificates=$(DEBIAN_CA_VERSION)

# Build and test dependencies `make deps` installs (Debian package names).
# libtomcrypt1 and libtommath1: dropbear's libraries, which the image build
# copies from the build host (ldd); openssh-client: the ssh smoke scenario;
# ipxe: `make pxe`'s chain-loaders; dnsmasq-base: the uefi-pxe scenario's
# DHCP and TFTP server; gdb: the unit watchdog's thread stacks of a hung suite.
DEBIAN_BUILD_DEPS := \
	qemu-system-x86 grub-pc-bin grub-common xorriso mtools cpio kmod xz-utils zstd \
	libxen-dev liburing-dev libnl-3-dev libnl-route-3-dev libnftables-dev libpcap-dev \
	libssl-dev iproute2 nftables iputils-ping xenstore-utils binutils pkg-config python3 \
	openssl ovmf grub-efi-amd64-bin libtomcrypt1 libtommath1 openssh-client ipxe dnsmasq-base \
	gdb
