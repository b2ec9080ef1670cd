// Xen's public io/netif.h, unchanged, for layout checks.
#include "CNetifReference.h"

#include <string.h>

#define __XEN_INTERFACE_VERSION__ 0x00030208
#define xen_mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define xen_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define xen_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)

#include <xen/xen.h>
#include <xen/io/ring.h>
#include <xen/io/netif.h>

size_t cnetif_size(int which) {
    switch (which) {
    case 0: return sizeof(struct netif_tx_request);
    case 1: return sizeof(struct netif_tx_response);
    case 2: return sizeof(struct netif_rx_request);
    case 3: return sizeof(struct netif_rx_response);
    case 4: return sizeof(struct netif_extra_info);
    case 5: return sizeof(union netif_tx_sring_entry);
    case 6: return sizeof(union netif_rx_sring_entry);
    case 7: return __CONST_RING_SIZE(netif_tx, 4096);
    case 8: return __CONST_RING_SIZE(netif_rx, 4096);
    default: return 0;
    }
}

void cnetif_tx_request(uint8_t *out, uint32_t gref, uint16_t offset, uint16_t flags,
                       uint16_t id, uint16_t size) {
    struct netif_tx_request r = {.gref = gref, .offset = offset, .flags = flags, .id = id,
                                 .size = size};
    memcpy(out, &r, sizeof r);
}

void cnetif_rx_response(uint8_t *out, uint16_t id, uint16_t offset, uint16_t flags,
                        int16_t status) {
    struct netif_rx_response r = {.id = id, .offset = offset, .flags = flags, .status = status};
    memcpy(out, &r, sizeof r);
}

void cnetif_gso_extra(uint8_t *out, uint8_t flags, uint16_t size, uint8_t type,
                      uint16_t features) {
    struct netif_extra_info e;
    memset(&e, 0, sizeof e);
    e.type = XEN_NETIF_EXTRA_TYPE_GSO;
    e.flags = flags;
    e.u.gso.size = size;
    e.u.gso.type = type;
    e.u.gso.features = features;
    memcpy(out, &e, sizeof e);
}

void cnetif_rx_request(uint8_t *out, uint16_t id, uint32_t gref) {
    struct netif_rx_request r = {.id = id, .gref = gref};
    memcpy(out, &r, sizeof r);
}

void cnetif_tx_response(uint8_t *out, uint16_t id, int16_t status) {
    struct netif_tx_response r = {.id = id, .status = status};
    memcpy(out, &r, sizeof r);
}
