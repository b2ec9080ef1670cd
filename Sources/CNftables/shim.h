// libnftables (Debian libnftables-dev): the nft command language run
// in-process over netlink, no `nft` binary.
#ifndef PROXENOS_CNFTABLES_SHIM_H
#define PROXENOS_CNFTABLES_SHIM_H

#include <nftables/libnftables.h>

#endif
