#ifndef PROXENOS_CLINUX_BLOCK
#define PROXENOS_CLINUX_BLOCK
#include <stdint.h>

/// fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE): deallocates a
/// file range, keeping the size (glibc declares fallocate only with
/// _GNU_SOURCE, which Swift's Glibc module lacks). 0, or -1 with errno.
int clinux_punch_hole(int fd, int64_t offset, int64_t length);

/// open(2)'s O_DIRECT (a GNU name Swift's Glibc module lacks).
extern const int CLINUX_O_DIRECT;
#endif
