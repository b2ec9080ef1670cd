#!/usr/bin/env python3
"""Extract the uncompressed ELF vmlinux from an x86 bzImage.

Xen under TCG is slow at xz, so the appliance hands Xen the raw kernel.
Uses the boot protocol header (Documentation/x86/boot.rst): the payload
offset and length locate the compressed kernel inside the protected-mode part.
"""
import lzma
import struct
import sys
import zlib


def payload(image: bytes) -> bytes:
    if image[0x202:0x206] != b"HdrS":
        sys.exit("extract-vmlinux: not a bzImage (no HdrS signature)")
    setup_sects = image[0x1F1] or 4
    protected = (setup_sects + 1) * 512
    offset, length = struct.unpack_from("<II", image, 0x248)
    return image[protected + offset: protected + offset + length]


def decompress(data: bytes) -> bytes:
    # The build appends the decompressed size (4 bytes) after the stream:
    # decompressors that stop at their end marker ignore it.
    if data.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data)
    if data.startswith(b"\x1f\x8b"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)
    if data.startswith(b"\x28\xb5\x2f\xfd"):
        sys.exit("extract-vmlinux: zstd payload; install python zstd support")
    sys.exit("extract-vmlinux: unknown payload compression %r" % data[:6])


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: extract-vmlinux.py BZIMAGE OUT")
    with open(sys.argv[1], "rb") as f:
        kernel = decompress(payload(f.read()))
    if kernel[:4] != b"\x7fELF":
        sys.exit("extract-vmlinux: payload is not an ELF image")
    with open(sys.argv[2], "wb") as f:
        f.write(kernel)


if __name__ == "__main__":
    main()
