// io/blkif.h compiled twice: natively (x86_64, our dom0's ABI) and in the
// i386 layout of the x86_32 ABI, the way 32-bit guests compile it
// (`uint64_t` aligned to 4 and `__i386__` defined). The second copy
// renames the header's structs so both live in one object; everything
// else is the header itself, so the Swift layouts are checked against
// Xen's text, not against a transcription of it.
#include "CRingReference.h"

#include <stddef.h>
#include <string.h>

#define __XEN_INTERFACE_VERSION__ 0x00030208
#define xen_mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define xen_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define xen_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)

#include <xen/xen.h>
#include <xen/io/ring.h>
#include <xen/io/blkif.h>

// The x86_32 copy: same header, i386 alignment, renamed types.
#undef __XEN_PUBLIC_IO_BLKIF_H__
#define blkif_request_segment blkif32_request_segment
#define blkif_request blkif32_request
#define blkif_request_t blkif32_request_t
#define blkif_request_discard blkif32_request_discard
#define blkif_request_discard_t blkif32_request_discard_t
#define blkif_request_indirect blkif32_request_indirect
#define blkif_request_indirect_t blkif32_request_indirect_t
#define blkif_response blkif32_response
#define blkif_response_t blkif32_response_t
// ring.h's DEFINE_RING_TYPES pastes its name argument, which a macro
// cannot rename: the second copy gets the entry union written out below,
// as ring.h defines it.
#pragma push_macro("DEFINE_RING_TYPES")
#undef DEFINE_RING_TYPES
#define DEFINE_RING_TYPES(name, req, rsp)
#pragma pack(push, 4)
#ifndef __i386__
#define __i386__ 1
#define CREF_DEFINED_I386
#endif
#include <xen/io/blkif.h>
#ifdef CREF_DEFINED_I386
#undef __i386__
#endif
union blkif32_sring_entry {
    struct blkif32_request req;
    struct blkif32_response rsp;
};
#pragma pack(pop)
#pragma pop_macro("DEFINE_RING_TYPES")
#undef blkif_request_segment
#undef blkif_request
#undef blkif_request_t
#undef blkif_request_discard
#undef blkif_request_discard_t
#undef blkif_request_indirect
#undef blkif_request_indirect_t
#undef blkif_response
#undef blkif_response_t

#define OFFSETS(request, rw, discard, indirect, response, entry) \
    do {                                                          \
        out[0] = sizeof(request);                                 \
        out[1] = _Alignof(request);                               \
        out[2] = sizeof(response);                                \
        out[3] = _Alignof(response);                              \
        out[4] = offsetof(rw, id);                                \
        out[5] = offsetof(rw, sector_number);                     \
        out[6] = offsetof(rw, seg);                               \
        out[7] = offsetof(discard, id);                           \
        out[8] = offsetof(discard, sector_number);                \
        out[9] = offsetof(discard, nr_sectors);                   \
        out[10] = offsetof(indirect, id);                         \
        out[11] = offsetof(indirect, sector_number);              \
        out[12] = offsetof(indirect, handle);                     \
        out[13] = offsetof(indirect, indirect_grefs);             \
        out[14] = offsetof(response, id);                         \
        out[15] = offsetof(response, operation);                  \
        out[16] = offsetof(response, status);                     \
        out[17] = sizeof(indirect);                               \
        out[18] = offsetof(discard, flag);                        \
        out[19] = offsetof(indirect, nr_segments);                \
        out[20] = sizeof(entry);                                  \
    } while (0)

void cref_blkif_abi_layout(int x86_32, size_t out[CREF_BLKIF_ABI_FIELDS]) {
    if (x86_32) {
        OFFSETS(struct blkif32_request, struct blkif32_request, struct blkif32_request_discard,
                struct blkif32_request_indirect, struct blkif32_response,
                union blkif32_sring_entry);
    } else {
        OFFSETS(struct blkif_request, struct blkif_request, struct blkif_request_discard,
                struct blkif_request_indirect, struct blkif_response,
                union blkif_sring_entry);
    }
}
