#define _GNU_SOURCE
#include "CLinuxBlock.h"

#include <fcntl.h>
#include <linux/falloc.h>

int clinux_punch_hole(int fd, int64_t offset, int64_t length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
}

const int CLINUX_O_DIRECT = O_DIRECT;
