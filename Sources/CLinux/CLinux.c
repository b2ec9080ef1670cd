#define _GNU_SOURCE
#include "CLinux.h"
#include <spawn.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <pthread.h>
#include <sched.h>

const int CLINUX_REBOOT_CMD_POWER_OFF = LINUX_REBOOT_CMD_POWER_OFF;
const int CLINUX_REBOOT_CMD_RESTART = LINUX_REBOOT_CMD_RESTART;
const int CLINUX_REBOOT_CMD_HALT = LINUX_REBOOT_CMD_HALT;
const int CLINUX_REBOOT_CMD_CAD_OFF = LINUX_REBOOT_CMD_CAD_OFF;

int clinux_reboot(int cmd) { return reboot(cmd); }

int clinux_finit_module(int fd, const char *params, int flags) {
    return (int)syscall(SYS_finit_module, fd, params, flags);
}

long clinux_getrandom(void *buffer, size_t length) {
    return (long)syscall(SYS_getrandom, buffer, length, 0);
}

int clinux_ioctl_ptr(int fd, unsigned long request, void *arg) {
    return ioctl(fd, request, arg);
}

int clinux_ioctl_int(int fd, unsigned long request, unsigned long arg) {
    return ioctl(fd, request, arg);
}

int clinux_fcntl_int(int fd, int cmd, int arg) { return fcntl(fd, cmd, arg); }

int clinux_open(const char *path, int flags, mode_t mode) {
    return open(path, flags, mode);
}

int clinux_block_all_signals(void) {
    sigset_t all;
    sigfillset(&all);
    return pthread_sigmask(SIG_BLOCK, &all, NULL);
}

int clinux_unblock_all_signals(void) {
    sigset_t all;
    sigfillset(&all);
    return pthread_sigmask(SIG_UNBLOCK, &all, NULL);
}

#include <sys/signalfd.h>

int clinux_signalfd(const int *signals, int count) {
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < count; i++) sigaddset(&set, signals[i]);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int clinux_signalfd_read(int fd) {
    struct signalfd_siginfo info;
    ssize_t n = read(fd, &info, sizeof info);
    if (n == (ssize_t)sizeof info) return (int)info.ssi_signo;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    if (n >= 0) { errno = EIO; }
    return -1;
}

const short CLINUX_POSIX_SPAWN_SETSID = POSIX_SPAWN_SETSID;

#include <net/if.h>
#include <string.h>
#include <sys/socket.h>

int clinux_interface_up(const char *name) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strncpy(request.ifr_name, name, IFNAMSIZ - 1);
    int result = ioctl(fd, SIOCGIFFLAGS, &request);
    if (result == 0 && !(request.ifr_flags & IFF_UP)) {
        request.ifr_flags |= IFF_UP;
        result = ioctl(fd, SIOCSIFFLAGS, &request);
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return result;
}

int clinux_setns_network(int fd) { return setns(fd, CLONE_NEWNET); }
