// The reference: Xen's public io/ring.h, unchanged, with barriers for a
// user-space build. Swift's ring must agree with this byte for byte.
#include "CRingReference.h"

#include <stdlib.h>
#include <string.h>

// From interface 3.0.8 on, ring.h uses the caller's xen_*mb barriers.
#define __XEN_INTERFACE_VERSION__ 0x00030208
#define xen_mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define xen_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define xen_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)

#include <xen/xen.h>
#include <xen/io/ring.h>
#include <xen/io/blkif.h>

struct cref_test_request {
    uint32_t id;
    uint16_t op;
    uint8_t flags;
    uint8_t pad;
    uint64_t payload;
    uint64_t extra;
};

struct cref_test_response {
    uint32_t id;
    int16_t status;
    uint16_t pad;
};

DEFINE_RING_TYPES(cref_test, struct cref_test_request, struct cref_test_response);

_Static_assert(sizeof(struct cref_test_request) == 24, "test request layout");
_Static_assert(sizeof(struct cref_test_response) == 8, "test response layout");

struct cref_front {
    cref_kind kind;
    union {
        cref_test_front_ring_t test;
        blkif_front_ring_t blkif;
    } r;
};

struct cref_back {
    cref_kind kind;
    union {
        cref_test_back_ring_t test;
        blkif_back_ring_t blkif;
    } r;
};

size_t cref_request_size(cref_kind kind) {
    return kind == CREF_TEST ? sizeof(struct cref_test_request) : sizeof(struct blkif_request);
}

size_t cref_response_size(cref_kind kind) {
    return kind == CREF_TEST ? sizeof(struct cref_test_response) : sizeof(struct blkif_response);
}

size_t cref_entry_size(cref_kind kind) {
    return kind == CREF_TEST ? sizeof(union cref_test_sring_entry)
                             : sizeof(union blkif_sring_entry);
}

size_t cref_ring_offset(cref_kind kind) {
    return kind == CREF_TEST ? offsetof(struct cref_test_sring, ring)
                             : offsetof(struct blkif_sring, ring);
}

uint32_t cref_const_ring_size(cref_kind kind, size_t bytes) {
    return kind == CREF_TEST ? __CONST_RING_SIZE(cref_test, bytes)
                             : __CONST_RING_SIZE(blkif, bytes);
}

size_t cref_test_request_offset(int field) {
    switch (field) {
    case 0: return offsetof(struct cref_test_request, id);
    case 1: return offsetof(struct cref_test_request, op);
    case 2: return offsetof(struct cref_test_request, flags);
    case 3: return offsetof(struct cref_test_request, payload);
    default: return offsetof(struct cref_test_request, extra);
    }
}

size_t cref_test_response_offset(int field) {
    return field == 0 ? offsetof(struct cref_test_response, id)
                      : offsetof(struct cref_test_response, status);
}

size_t cref_blkif_request_offset(int field) {
    switch (field) {
    case 0: return offsetof(struct blkif_request, operation);
    case 1: return offsetof(struct blkif_request, nr_segments);
    case 2: return offsetof(struct blkif_request, handle);
    case 3: return offsetof(struct blkif_request, id);
    case 4: return offsetof(struct blkif_request, sector_number);
    case 5: return offsetof(struct blkif_request, seg);
    default: return sizeof(struct blkif_request_segment);
    }
}

size_t cref_blkif_response_offset(int field) {
    switch (field) {
    case 0: return offsetof(struct blkif_response, id);
    case 1: return offsetof(struct blkif_response, operation);
    default: return offsetof(struct blkif_response, status);
    }
}

void cref_sring_set(void *sring, uint32_t req_prod, uint32_t req_event, uint32_t rsp_prod,
                    uint32_t rsp_event) {
    // The header is the same for every ring type.
    struct cref_test_sring *s = sring;
    s->req_prod = req_prod;
    s->req_event = req_event;
    s->rsp_prod = rsp_prod;
    s->rsp_event = rsp_event;
}

uint32_t cref_sring_get(const void *sring, int which) {
    const struct cref_test_sring *s = sring;
    switch (which) {
    case 0: return s->req_prod;
    case 1: return s->req_event;
    case 2: return s->rsp_prod;
    default: return s->rsp_event;
    }
}

// Every operation is written once as a macro over the ring member, then
// dispatched on the kind.
#define CREF_DISPATCH(ring, body) \
    do { \
        if ((ring)->kind == CREF_TEST) { \
            __typeof__((ring)->r.test) *R = &(ring)->r.test; \
            body; \
        } else { \
            __typeof__((ring)->r.blkif) *R = &(ring)->r.blkif; \
            body; \
        } \
    } while (0)

cref_front *cref_front_new(cref_kind kind, void *sring, size_t bytes, uint32_t start,
                           int init_shared) {
    cref_front *ring = calloc(1, sizeof(*ring));
    if (!ring) return NULL;
    ring->kind = kind;
    if (kind == CREF_TEST) {
        cref_test_sring_t *s = sring;
        if (init_shared) {
            XEN_FRONT_RING_INIT(&ring->r.test, s, bytes);
        } else {
            FRONT_RING_ATTACH(&ring->r.test, s, start, bytes);
        }
    } else {
        blkif_sring_t *s = sring;
        if (init_shared) {
            XEN_FRONT_RING_INIT(&ring->r.blkif, s, bytes);
        } else {
            FRONT_RING_ATTACH(&ring->r.blkif, s, start, bytes);
        }
    }
    return ring;
}

void cref_front_free(cref_front *ring) { free(ring); }

uint32_t cref_front_size(const cref_front *ring) {
    uint32_t v;
    CREF_DISPATCH(ring, v = RING_SIZE(R));
    return v;
}

uint32_t cref_front_req_prod_pvt(const cref_front *ring) {
    uint32_t v;
    CREF_DISPATCH(ring, v = R->req_prod_pvt);
    return v;
}

uint32_t cref_front_rsp_cons(const cref_front *ring) {
    uint32_t v;
    CREF_DISPATCH(ring, v = R->rsp_cons);
    return v;
}

uint32_t cref_front_free_requests(const cref_front *ring) {
    uint32_t v;
    CREF_DISPATCH(ring, v = RING_FREE_REQUESTS(R));
    return v;
}

int cref_front_put(cref_front *ring, const void *request) {
    int done = 0;
    CREF_DISPATCH(ring, {
        if (!RING_FULL(R)) {
            memcpy(RING_GET_REQUEST(R, R->req_prod_pvt), request, sizeof(*RING_GET_REQUEST(R, 0)));
            R->req_prod_pvt++;
            done = 1;
        }
    });
    return done;
}

int cref_front_push(cref_front *ring) {
    int notify;
    CREF_DISPATCH(ring, RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(R, notify));
    return notify;
}

uint32_t cref_front_unconsumed(const cref_front *ring) {
    uint32_t v;
    CREF_DISPATCH(ring, v = RING_HAS_UNCONSUMED_RESPONSES(R));
    return v;
}

int cref_front_take(cref_front *ring, void *out) {
    int done = 0;
    CREF_DISPATCH(ring, {
        if (RING_HAS_UNCONSUMED_RESPONSES(R)) {
            __typeof__(*RING_GET_RESPONSE(R, 0)) copy;
            RING_COPY_RESPONSE(R, R->rsp_cons, &copy);
            memcpy(out, &copy, sizeof(copy));
            R->rsp_cons++;
            done = 1;
        }
    });
    return done;
}

int cref_front_final_check(cref_front *ring) {
    int work;
    CREF_DISPATCH(ring, RING_FINAL_CHECK_FOR_RESPONSES(R, work));
    return work != 0;
}

cref_back *cref_back_new(cref_kind kind, void *sring, size_t bytes, uint32_t start) {
    cref_back *ring = calloc(1, sizeof(*ring));
    if (!ring) return NULL;
    ring->kind = kind;
    if (kind == CREF_TEST) {
        BACK_RING_ATTACH(&ring->r.test, (cref_test_sring_t *)sring, start, bytes);
    } else {
        BACK_RING_ATTACH(&ring->r.blkif, (blkif_sring_t *)sring, start, bytes);
    }
    return ring;
}

void cref_back_free(cref_back *ring) { free(ring); }

uint32_t cref_back_size(const cref_back *ring) {
    uint32_t v;
    CREF_DISPATCH(ring, v = RING_SIZE(R));
    return v;
}

uint32_t cref_back_rsp_prod_pvt(const cref_back *ring) {
    uint32_t v;
    CREF_DISPATCH(ring, v = R->rsp_prod_pvt);
    return v;
}

uint32_t cref_back_req_cons(const cref_back *ring) {
    uint32_t v;
    CREF_DISPATCH(ring, v = R->req_cons);
    return v;
}

uint32_t cref_back_unconsumed(const cref_back *ring) {
    uint32_t v;
    CREF_DISPATCH(ring, v = XEN_RING_NR_UNCONSUMED_REQUESTS(R));
    return v;
}

int cref_back_take(cref_back *ring, void *out) {
    int done = 0;
    CREF_DISPATCH(ring, {
        if (RING_HAS_UNCONSUMED_REQUESTS(R)) {
            __typeof__(*RING_GET_REQUEST(R, 0)) copy;
            RING_COPY_REQUEST(R, R->req_cons, &copy);
            memcpy(out, &copy, sizeof(copy));
            R->req_cons++;
            done = 1;
        }
    });
    return done;
}

void cref_back_put(cref_back *ring, const void *response) {
    CREF_DISPATCH(ring, {
        memcpy(RING_GET_RESPONSE(R, R->rsp_prod_pvt), response, sizeof(*RING_GET_RESPONSE(R, 0)));
        R->rsp_prod_pvt++;
    });
}

int cref_back_push(cref_back *ring) {
    int notify;
    CREF_DISPATCH(ring, RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(R, notify));
    return notify;
}

int cref_back_final_check(cref_back *ring) {
    int work;
    CREF_DISPATCH(ring, RING_FINAL_CHECK_FOR_REQUESTS(R, work));
    return work != 0;
}

int cref_back_prod_overflow(const cref_back *ring, uint32_t prod) {
    int v;
    CREF_DISPATCH(ring, v = RING_REQUEST_PROD_OVERFLOW(R, prod));
    return v;
}

int cref_back_cons_overflow(const cref_back *ring) {
    int v;
    CREF_DISPATCH(ring, v = RING_REQUEST_CONS_OVERFLOW(R, R->req_cons));
    return v;
}
