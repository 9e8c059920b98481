#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "CRingfenceLinux.h"

int CRingfenceLinux_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    return accept4(fd, address, length, flags);
}

ssize_t CRingfenceLinux_splice(int from, int to, size_t count, unsigned int flags) {
    return splice(from, NULL, to, NULL, count, flags);
}

int CRingfenceLinux_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

int CRingfenceLinux_setPipeSize(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }

int CRingfenceLinux_getPipeSize(int fd) { return fcntl(fd, F_GETPIPE_SZ); }

int CRingfenceLinux_peerCredentials(int fd, int *pid, unsigned int *uid, unsigned int *gid) {
    struct ucred credentials;
    socklen_t length = sizeof(credentials);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -1;
    *pid = credentials.pid;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
}

const unsigned int CRingfenceLinux_SPLICE_F_MOVE = SPLICE_F_MOVE;
const unsigned int CRingfenceLinux_SPLICE_F_NONBLOCK = SPLICE_F_NONBLOCK;

int CRingfenceLinux_waitReadable(const int *fds, int count, long long nanoseconds) {
    struct pollfd entries[16];
    if (count > 16) count = 16;
    for (int i = 0; i < count; i++) {
        entries[i].fd = fds[i];
        entries[i].events = POLLIN;
        entries[i].revents = 0;
    }
    struct timespec timeout = { .tv_sec = nanoseconds / 1000000000LL, .tv_nsec = nanoseconds % 1000000000LL };
    return ppoll(entries, (nfds_t)count, &timeout, NULL);
}
