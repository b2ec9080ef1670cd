#define _GNU_SOURCE
#include "CLinuxXenStore.h"

#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

int clinux_xenstore_eventfd(unsigned int initval) {
    return eventfd(initval, EFD_CLOEXEC);
}

int clinux_xenstore_accept(int fd) {
    return accept4(fd, NULL, NULL, SOCK_CLOEXEC);
}

int clinux_xenstore_name_thread(const char *name) {
    char truncated[16];
    strncpy(truncated, name, sizeof(truncated) - 1);
    truncated[sizeof(truncated) - 1] = 0;
    return pthread_setname_np(pthread_self(), truncated);
}
