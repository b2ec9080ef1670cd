// Xen's io/netif.h structures compiled, for byte-for-byte checks of the
// Swift encoders and decoders.
#ifndef PROXENOS_CNETIF_REFERENCE_H
#define PROXENOS_CNETIF_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

/// sizeof of netif_tx_request, netif_tx_response, netif_rx_request,
/// netif_rx_response, netif_extra_info; and the ring slot sizes.
size_t cnetif_size(int which);

/// Fills `out` with a netif_tx_request built by C from the fields.
void cnetif_tx_request(uint8_t *out, uint32_t gref, uint16_t offset, uint16_t flags,
                       uint16_t id, uint16_t size);
/// Fills `out` with a netif_rx_response.
void cnetif_rx_response(uint8_t *out, uint16_t id, uint16_t offset, uint16_t flags,
                        int16_t status);
/// Fills `out` with a GSO netif_extra_info.
void cnetif_gso_extra(uint8_t *out, uint8_t flags, uint16_t size, uint8_t type,
                      uint16_t features);
/// Fills `out` with a netif_rx_request.
void cnetif_rx_request(uint8_t *out, uint16_t id, uint32_t gref);
/// Fills `out` with a netif_tx_response.
void cnetif_tx_response(uint8_t *out, uint16_t id, int16_t status);

#endif
