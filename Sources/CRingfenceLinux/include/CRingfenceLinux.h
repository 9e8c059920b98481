// Linux calls that glibc declares only under _GNU_SOURCE, which Swift's Glibc module does not
// see. Thin, prefixed wrappers and constants; the one exception is the sock_diag walks behind
// CRingfenceLinux_destroySockets and CRingfenceLinux_listTCPSockets, which netlink's message
// format makes a C job.
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

// Closes (sock_diag SOCK_DESTROY) every TCP socket of this network namespace, in any state but
// LISTEN and TIME_WAIT, whose remote address lies in `address`/`prefixLength` (`address` holds 4
// bytes for AF_INET, 16 for AF_INET6, network order) and whose local port is not one of
// `keepLocalPorts` (with `onlyThesePorts` non-zero: whose local port IS one of them). An AF_INET block also matches IPv4-mapped peers of AF_INET6 sockets. Needs
// CAP_NET_ADMIN. 0 with the count in `*destroyed`, or -1 (errno; `*destroyed` counts what was
// already closed).
int CRingfenceLinux_destroySockets(int family, const unsigned char *address, int prefixLength,
                                   const unsigned short *keepLocalPorts, int keepCount, int onlyThesePorts, int *destroyed);

// One TCP socket of a sock_diag dump: addresses in network order (4 bytes used for AF_INET),
// ports in host order, the state (10: LISTEN), the owner's uid and the socket's inode.
struct CRingfenceLinux_TCPSocket {
    unsigned char family, state;
    unsigned short localPort, remotePort;
    unsigned char local[16], remote[16];
    unsigned int uid;
    unsigned long long inode;
};

// A NETLINK_SOCK_DIAG socket with a 2 s receive timeout, for repeated listings (a poll every
// few milliseconds should not make and close a socket each time). -1 (errno) on failure.
int CRingfenceLinux_openSockDiag(void);

// Lists the TCP sockets of `family` (AF_INET, AF_INET6, or AF_UNSPEC for both in one dump) in the network namespace of `diagFD`
// (from CRingfenceLinux_openSockDiag; if negative, a socket made and closed for this call, in the
// calling thread's namespace) whose state is in the `states` mask (bit N: state N) and, if
// `localPort` is not negative, whose local port is `localPort`: one sock_diag dump. 0 with a
// malloc'd array in `*sockets` (free it with CRingfenceLinux_freeTCPSockets) and its length in
// `*count`, or -1 (errno).
int CRingfenceLinux_listTCPSockets(int diagFD, int family, unsigned int states, int localPort,
                                   struct CRingfenceLinux_TCPSocket **sockets, int *count);
void CRingfenceLinux_freeTCPSockets(struct CRingfenceLinux_TCPSocket *sockets);

// One DNS query of `type` (1: A, 28: AAAA) for `name` in class IN, through the system's resolver
// configuration (/etc/resolv.conf, read afresh on every call: its search list, servers, timeouts),
// as res_nsearch(3) with a resolver state of this call's own (thread-safe). The raw answer goes
// to `answer`; its length, or -1 when there is none (no such name, no server answered). Blocks.
int CRingfenceLinux_dnsQuery(const char *name, int type, unsigned char *answer, int length);

#endif
