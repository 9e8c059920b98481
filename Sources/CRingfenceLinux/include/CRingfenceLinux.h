// Linux calls that glibc declares only under _GNU_SOURCE, which Swift's Glibc module does not
// see. Thin, prefixed wrappers and constants; no logic lives here.
#ifndef RINGFENCE_CRINGFENCELINUX_H
#define RINGFENCE_CRINGFENCELINUX_H

#include <sys/types.h>
#include <sys/socket.h>

int CRingfenceLinux_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);
ssize_t CRingfenceLinux_splice(int from, int to, size_t count, unsigned int flags);
int CRingfenceLinux_pipe2(int fds[2], int flags);
int CRingfenceLinux_setPipeSize(int fd, int size);
int CRingfenceLinux_getPipeSize(int fd);
// ppoll(2) for readability of `count` descriptors, waiting at most `nanoseconds`.
int CRingfenceLinux_waitReadable(const int *fds, int count, long long nanoseconds);

// SO_PEERCRED of a Unix socket: the connecting process's pid, uid and gid. 0 or -1 (errno).
int CRingfenceLinux_peerCredentials(int fd, int *pid, unsigned int *uid, unsigned int *gid);
extern const unsigned int CRingfenceLinux_SPLICE_F_MOVE;
extern const unsigned int CRingfenceLinux_SPLICE_F_NONBLOCK;

#endif
