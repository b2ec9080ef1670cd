// consoled's calls Swift's Glibc module does not show: timerfd (sys/timerfd.h
// is not in the module map), accept4 and SO_PEERCRED's struct ucred (both
// need _GNU_SOURCE).
#ifndef PROXENOS_CLINUX_CONSOLE_H
#define PROXENOS_CLINUX_CONSOLE_H

#include <stdint.h>

/// timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC).
int clinux_timerfd_create(void);

/// Arms a timerfd to fire once, `nanoseconds` from now (at least 1 ns);
/// 0 disarms it. Returns 0 or -1 with errno set.
int clinux_timerfd_arm(int fd, uint64_t nanoseconds);

/// accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC).
int clinux_accept_nonblocking(int fd);

/// The pid and uid of a Unix socket's peer (SO_PEERCRED), as the kernel
/// recorded them at connect. Returns 0 or -1 with errno set.
int clinux_peer_credentials(int fd, int32_t *pid, uint32_t *uid);
#endif
