// Debian's liburing (liburing-dev) for blkback's io_uring engine, with the
// few preparations the engine uses as plain functions (liburing's own are
// static inline over macros Swift does not import uniformly).
#ifndef PROXENOS_CURING_SHIM
#define PROXENOS_CURING_SHIM
// The kernel's header first: liburing's bundled copy has the same include
// guard and becomes empty, so this module and swift-system's (which
// includes the kernel's) hold one definition of the io_uring structs.
#include <linux/io_uring.h>
#include <liburing.h>
#include <errno.h>
#include <stdint.h>

/// Queues one operation (0 read, 1 write, 2 fdatasync) with
/// `tag` as its user data; -EBUSY when the submission queue is full.
static inline int curing_queue(struct io_uring *ring, int kind, int fd, void *buffer,
                               uint32_t length, uint64_t offset, uint64_t tag) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) return -EBUSY;
    switch (kind) {
    case 0: io_uring_prep_read(sqe, fd, buffer, length, offset); break;
    case 1: io_uring_prep_write(sqe, fd, buffer, length, offset); break;
    case 2: io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC); break;
    default: return -EINVAL;
    }
    io_uring_sqe_set_data64(sqe, tag);
    return 0;
}

/// Takes up to `max` completions without waiting: their tags and results
/// (bytes, or -errno). Returns how many.
static inline unsigned curing_reap(struct io_uring *ring, uint64_t *tags, int32_t *results,
                                   unsigned max) {
    unsigned count = 0;
    struct io_uring_cqe *cqe;
    while (count < max && io_uring_peek_cqe(ring, &cqe) == 0 && cqe) {
        tags[count] = io_uring_cqe_get_data64(cqe);
        results[count] = cqe->res;
        io_uring_cqe_seen(ring, cqe);
        count++;
    }
    return count;
}

/// The ring's descriptor: readable (epoll) while completions wait.
static inline int curing_fd(const struct io_uring *ring) { return ring->ring_fd; }

/// Completions waiting in the completion queue.
static inline unsigned curing_ready(struct io_uring *ring) { return io_uring_cq_ready(ring); }

/// Submission-queue entries free now.
static inline unsigned curing_space(struct io_uring *ring) { return io_uring_sq_space_left(ring); }
#endif
