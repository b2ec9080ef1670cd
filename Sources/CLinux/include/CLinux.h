// Linux system calls and constants that Swift's Glibc module does not
// expose (variadic or macro-only in the C headers).
#ifndef PROXENOS_CLINUX_H
#define PROXENOS_CLINUX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// reboot(2) with one of the LINUX_REBOOT_CMD_* values below.
int clinux_reboot(int cmd);

extern const int CLINUX_REBOOT_CMD_POWER_OFF;
extern const int CLINUX_REBOOT_CMD_RESTART;
extern const int CLINUX_REBOOT_CMD_HALT;
extern const int CLINUX_REBOOT_CMD_CAD_OFF;

/// finit_module(2): load a kernel module from an open file.
int clinux_finit_module(int fd, const char *params, int flags);

/// getrandom(2) with flags 0: blocks until the kernel's random number
/// generator is initialised; returns the bytes read or -1 with errno set.
long clinux_getrandom(void *buffer, size_t length);

/// ioctl(2) with a pointer argument (Swift cannot call the variadic one).
int clinux_ioctl_ptr(int fd, unsigned long request, void *arg);

/// ioctl(2) with an integer argument.
int clinux_ioctl_int(int fd, unsigned long request, unsigned long arg);

/// fcntl(2) with an integer argument.
int clinux_fcntl_int(int fd, int cmd, int arg);

/// open(2) with a mode (Swift cannot call the variadic one).
int clinux_open(const char *path, int flags, mode_t mode);

/// Blocks every signal in the calling thread; returns 0 or an errno value.
int clinux_block_all_signals(void);

/// Unblocks every signal in the calling thread (for a child after fork).
int clinux_unblock_all_signals(void);

// XenStore module additions.
#include "CLinuxXenStore.h"
// The data-path runtime's epoll and eventfd.
#include "CLinuxEpoll.h"
// consoled: timerfd, non-blocking accept, peer credentials.
#include "CLinuxConsole.h"
// blkback's backing-file operations.
#include "CLinuxBlock.h"

#endif

#ifndef PROXENOS_CLINUX_SIGNALS
#define PROXENOS_CLINUX_SIGNALS
/// A non-blocking, close-on-exec signalfd for the given signals (which the
/// caller has blocked); returns the fd or -1 with errno set.
int clinux_signalfd(const int *signals, int count);

/// Reads one pending signal from a signalfd: its number, 0 when none is
/// pending, or -1 with errno set.
int clinux_signalfd_read(int fd);
#endif

/// posix_spawn's POSIX_SPAWN_SETSID (a GNU extension Swift does not see).
extern const short CLINUX_POSIX_SPAWN_SETSID;

/// Sets IFF_UP on a network interface (SIOCSIFFLAGS); 0 or -1 with errno.
int clinux_interface_up(const char *name);

/// setns(fd, CLONE_NEWNET): moves the calling thread into the network
/// namespace `fd` names (tests put TAPs in namespaces of their own this way).
int clinux_setns_network(int fd);
