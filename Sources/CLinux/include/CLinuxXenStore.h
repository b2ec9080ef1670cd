// GNU-only calls for the XenStore module (its transports and the in-memory
// server); Swift's Glibc module is built without _GNU_SOURCE.
#ifndef PROXENOS_CLINUX_XENSTORE_H
#define PROXENOS_CLINUX_XENSTORE_H

/// eventfd(initval, EFD_CLOEXEC): a wake-up descriptor for poll.
int clinux_xenstore_eventfd(unsigned int initval);

/// accept4(fd, NULL, NULL, SOCK_CLOEXEC).
int clinux_xenstore_accept(int fd);

/// Names the calling thread (at most 15 bytes are kept); returns 0 or an
/// errno value.
int clinux_xenstore_name_thread(const char *name);

#endif
