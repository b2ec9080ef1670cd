// epoll and eventfd for the data-path runtime. struct epoll_event is packed
// on x86-64, which Swift does not import faithfully, so the calls take and
// return plain arrays instead.
#ifndef PROXENOS_CLINUX_EPOLL_H
#define PROXENOS_CLINUX_EPOLL_H

#include <stdint.h>

/// epoll_create1(EPOLL_CLOEXEC).
int clinux_epoll_create(void);

/// epoll_ctl(EPOLL_CTL_ADD / MOD) with `events` (EPOLLIN ...) and `token`
/// as the event's data.
int clinux_epoll_add(int epfd, int fd, uint32_t events, uint64_t token);
int clinux_epoll_modify(int epfd, int fd, uint32_t events, uint64_t token);

/// epoll_ctl(EPOLL_CTL_DEL).
int clinux_epoll_remove(int epfd, int fd);

/// epoll_wait into `tokens` and `events` (each `max` long); returns the
/// count, or -1 with errno set.
int clinux_epoll_wait(int epfd, uint64_t *tokens, uint32_t *events, int max, int timeout_ms);

/// eventfd(initval, EFD_CLOEXEC | EFD_NONBLOCK).
int clinux_eventfd(unsigned int initval);

extern const uint32_t CLINUX_EPOLLIN;
extern const uint32_t CLINUX_EPOLLOUT;
extern const uint32_t CLINUX_EPOLLERR;
extern const uint32_t CLINUX_EPOLLHUP;
extern const uint32_t CLINUX_EPOLLET;

#endif
