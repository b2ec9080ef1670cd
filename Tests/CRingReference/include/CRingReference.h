// Xen's io/ring.h macros compiled as functions, so the Swift ring tests can
// run the C ring and ours on the same bytes. Two ring types: a small test
// ring (24-byte requests, 8-byte responses) and blkif (112/16).
//
// Rings are opaque handles; messages cross as raw bytes of the C structs.
#ifndef PROXENOS_CRINGREFERENCE_H
#define PROXENOS_CRINGREFERENCE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cref_front cref_front;
typedef struct cref_back cref_back;

/// Which DEFINE_RING_TYPES instance a handle uses.
typedef enum {
    CREF_TEST = 0,
    CREF_BLKIF = 1,
} cref_kind;

/// sizeof the request/response structs and the sring entry union.
size_t cref_request_size(cref_kind kind);
size_t cref_response_size(cref_kind kind);
size_t cref_entry_size(cref_kind kind);
/// offsetof(struct X_sring, ring).
size_t cref_ring_offset(cref_kind kind);
/// __CONST_RING_SIZE for a buffer of `bytes`.
uint32_t cref_const_ring_size(cref_kind kind, size_t bytes);

/// Field offsets of the test structs and blkif, to check Swift encoders.
size_t cref_test_request_offset(int field);   // 0 id, 1 op, 2 flags, 3 payload, 4 extra
size_t cref_test_response_offset(int field);  // 0 id, 1 status
size_t cref_blkif_request_offset(int field);  // 0 operation, 1 nr_segments, 2 handle, 3 id,
                                              // 4 sector_number, 5 seg, 6 seg stride
size_t cref_blkif_response_offset(int field); // 0 id, 1 operation, 2 status

/// Sets the four shared indices (for rings started near UINT32_MAX).
void cref_sring_set(void *sring, uint32_t req_prod, uint32_t req_event, uint32_t rsp_prod,
                    uint32_t rsp_event);
/// Reads shared index 0 req_prod, 1 req_event, 2 rsp_prod, 3 rsp_event.
uint32_t cref_sring_get(const void *sring, int which);

/// XEN_FRONT_RING_INIT (init_shared != 0) or FRONT_RING_ATTACH at `start`.
cref_front *cref_front_new(cref_kind kind, void *sring, size_t bytes, uint32_t start,
                           int init_shared);
void cref_front_free(cref_front *ring);
uint32_t cref_front_size(const cref_front *ring);
uint32_t cref_front_req_prod_pvt(const cref_front *ring);
uint32_t cref_front_rsp_cons(const cref_front *ring);
/// RING_FREE_REQUESTS.
uint32_t cref_front_free_requests(const cref_front *ring);
/// If !RING_FULL: copies `request` (cref_request_size bytes) to
/// RING_GET_REQUEST(req_prod_pvt), req_prod_pvt++, returns 1; else 0.
int cref_front_put(cref_front *ring, const void *request);
/// RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: returns notify.
int cref_front_push(cref_front *ring);
/// RING_HAS_UNCONSUMED_RESPONSES (the count).
uint32_t cref_front_unconsumed(const cref_front *ring);
/// If responses are waiting: RING_COPY_RESPONSE to `out`, rsp_cons++, 1; else 0.
int cref_front_take(cref_front *ring, void *out);
/// RING_FINAL_CHECK_FOR_RESPONSES: returns work_to_do.
int cref_front_final_check(cref_front *ring);

/// BACK_RING_ATTACH at `start`.
cref_back *cref_back_new(cref_kind kind, void *sring, size_t bytes, uint32_t start);
void cref_back_free(cref_back *ring);
uint32_t cref_back_size(const cref_back *ring);
uint32_t cref_back_rsp_prod_pvt(const cref_back *ring);
uint32_t cref_back_req_cons(const cref_back *ring);
/// XEN_RING_NR_UNCONSUMED_REQUESTS.
uint32_t cref_back_unconsumed(const cref_back *ring);
/// If requests are waiting: RING_COPY_REQUEST to `out`, req_cons++, 1; else 0.
int cref_back_take(cref_back *ring, void *out);
/// Copies `response` to RING_GET_RESPONSE(rsp_prod_pvt), rsp_prod_pvt++.
void cref_back_put(cref_back *ring, const void *response);
/// RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: returns notify.
int cref_back_push(cref_back *ring);
/// RING_FINAL_CHECK_FOR_REQUESTS: returns work_to_do.
int cref_back_final_check(cref_back *ring);
/// RING_REQUEST_PROD_OVERFLOW(ring, prod).
int cref_back_prod_overflow(const cref_back *ring, uint32_t prod);
/// RING_REQUEST_CONS_OVERFLOW(ring, req_cons).
int cref_back_cons_overflow(const cref_back *ring);

/// io/blkif.h's layout in one ABI (x86_32 nonzero: the i386 layout), in
/// this order: request size, alignment, response size, alignment;
/// read/write id, sector_number, seg; discard id, sector_number,
/// nr_sectors; indirect id, sector_number, handle, indirect_grefs;
/// response id, operation, status; sizeof the indirect request; discard
/// flag; indirect nr_segments; sizeof the ring entry union.
#define CREF_BLKIF_ABI_FIELDS 21
void cref_blkif_abi_layout(int x86_32, size_t out[CREF_BLKIF_ABI_FIELDS]);

#endif
