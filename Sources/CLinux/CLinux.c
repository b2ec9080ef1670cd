#include "CLinux.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <pthread.h>

const int CLINUX_REBOOT_CMD_POWER_OFF = LINUX_REBOOT_CMD_POWER_OFF;
const int CLINUX_REBOOT_CMD_RESTART = LINUX_REBOOT_CMD_RESTART;
const int CLINUX_REBOOT_CMD_HALT = LINUX_REBOOT_CMD_HALT;
const int CLINUX_REBOOT_CMD_CAD_OFF = LINUX_REBOOT_CMD_CAD_OFF;

int clinux_reboot(int cmd) { return reboot(cmd); }

int clinux_finit_module(int fd, const char *params, int flags) {
    return (int)syscall(SYS_finit_module, fd, params, flags);
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
