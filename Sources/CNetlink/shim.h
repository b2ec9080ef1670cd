// libnl-3 and libnl-route-3 (Debian libnl-3-dev, libnl-route-3-dev) for the
// NetConf module: links, addresses, routes, and raw rtnetlink messages for
// what libnl 3.7 has no object API for (bridge IFLA_INFO_DATA).
#ifndef PROXENOS_CNETLINK_SHIM_H
#define PROXENOS_CNETLINK_SHIM_H

#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/route/rtnl.h>
#include <netlink/route/link.h>
#include <netlink/route/link/inet.h>
#include <netlink/route/addr.h>
#include <netlink/route/route.h>
#include <netlink/route/nexthop.h>

// Macro-only limits that Swift cannot import.
static const int CNETLINK_IFLA_MAX = IFLA_MAX;
static const int CNETLINK_IFLA_INFO_MAX = IFLA_INFO_MAX;
static const int CNETLINK_IFLA_BR_MAX = IFLA_BR_MAX;
static const int CNETLINK_RTAX_MAX = RTAX_MAX;

#endif
