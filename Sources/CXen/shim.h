// Xen's user-space libraries (Debian libxen-dev) for Swift: the device
// wrappers (libxenevtchn, libxengnttab) and the toolstack (libxenctrl,
// libxenguest, libxenforeignmemory) import this one module.
#ifndef PROXENOS_CXEN_SHIM_H
#define PROXENOS_CXEN_SHIM_H

#include <stdint.h>
#include <xenctrl.h>
#include <xenguest.h>
#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenforeignmemory.h>
#include <xentoollog.h>

// Flag macros built from shifts of other macros do not reach Swift; these
// constants carry their values.

/// GNTCOPY_source_gref: the copy source is a foreign grant reference.
static const uint16_t CXEN_GNTCOPY_SOURCE_GREF = GNTCOPY_source_gref;
/// GNTCOPY_dest_gref: the copy destination is a foreign grant reference.
static const uint16_t CXEN_GNTCOPY_DEST_GREF = GNTCOPY_dest_gref;

#endif
