#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
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

// ---- sock_diag: destroy TCP sockets by remote address block (`proxyctl kick`), like `ss -K`. ----
// Dump first, destroy after: destroying during the dump would shift the kernel's resume position
// within a hash bucket and could skip sockets.

// Netlink dump datagrams are at most 32 KiB. The bounds keep every loop finite.
enum { DIAG_BUFFER = 32768, DIAG_MAX_DATAGRAMS = 1 << 16, DIAG_MAX_MATCHES = 1 << 20 };

// A socket the dump selected: its family and identity (ports, addresses, interface, cookie).
struct DiagMatch { unsigned char family; struct inet_diag_sockid id; };

struct DiagQuery {
    int family, prefixLength, keepCount, keepIsOnly;
    const unsigned char *address;
    const unsigned short *keep;
    struct DiagMatch *matches;
    size_t count, capacity;
};

// Whether the first `prefixLength` bits of `candidate` equal those of `block`.
static int diagInBlock(const unsigned char *candidate, const unsigned char *block, int prefixLength) {
    int bytes = prefixLength / 8, bits = prefixLength % 8;
    if (memcmp(candidate, block, (size_t)bytes) != 0) return 0;
    unsigned char mask = (unsigned char)(0xff << (8 - bits));
    return bits == 0 || (candidate[bytes] & mask) == (block[bytes] & mask);
}

static int diagSelects(const struct DiagQuery *query, const struct inet_diag_msg *message) {
    static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    const unsigned char *remote = (const unsigned char *)message->id.idiag_dst;
    if (message->idiag_state == TCP_LISTEN || message->idiag_state == TCP_TIME_WAIT) return 0;
    if (message->idiag_family == query->family) {
        if (!diagInBlock(remote, query->address, query->prefixLength)) return 0;
    } else if (query->family == AF_INET && message->idiag_family == AF_INET6) {
        // A dual-stack socket's IPv4 peer, as ::ffff:a.b.c.d.
        if (memcmp(remote, mapped, sizeof mapped) != 0) return 0;
        if (!diagInBlock(remote + 12, query->address, query->prefixLength)) return 0;
    } else {
        return 0;
    }
    unsigned short local = ntohs(message->id.idiag_sport);
    int listed = 0;
    for (int i = 0; i < query->keepCount; i++) if (query->keep[i] == local) listed = 1;
    return query->keepIsOnly ? listed : !listed;
}

// Makes room in `*array` (`count` elements of `size` bytes used of `*capacity`) for one more:
// doubling from 16, at most DIAG_MAX_MATCHES elements. 0, or -1 (errno).
static int diagReserve(void **array, size_t *capacity, size_t count, size_t size) {
    if (count < *capacity) return 0;
    size_t grown = *capacity ? *capacity * 2 : 16;
    if (grown > DIAG_MAX_MATCHES) { errno = EOVERFLOW; return -1; }
    void *larger = realloc(*array, grown * size);
    if (!larger) return -1;
    *array = larger;
    *capacity = grown;
    return 0;
}

static int diagAppend(struct DiagQuery *query, const struct inet_diag_msg *message) {
    void *matches = query->matches;
    int reserved = diagReserve(&matches, &query->capacity, query->count, sizeof *query->matches);
    query->matches = matches;
    if (reserved != 0) return -1;
    query->matches[query->count].family = message->idiag_family;
    query->matches[query->count].id = message->id;
    query->count++;
    return 0;
}

// Sends one request: `body` is a struct inet_diag_req_v2, or for TCPDIAG_GETSOCK an inet_diag_req.
static int diagSendBody(int fd, unsigned short type, unsigned short flags, unsigned int sequence,
                        const void *body, size_t size) {
    struct { struct nlmsghdr header; union { struct inet_diag_req_v2 v2; struct inet_diag_req compat; } request; } message;
    memset(&message, 0, sizeof message);
    if (size > sizeof message.request) { errno = EINVAL; return -1; }
    message.header.nlmsg_len = NLMSG_LENGTH(size);
    message.header.nlmsg_type = type;
    message.header.nlmsg_flags = flags;
    message.header.nlmsg_seq = sequence;
    memcpy(&message.request, body, size);
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    // Netlink to the kernel is synchronous: all or nothing, no EINTR.
    return sendto(fd, &message, message.header.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0 ? -1 : 0;
}

static int diagSend(int fd, unsigned short type, unsigned short flags, unsigned int sequence,
                    const struct inet_diag_req_v2 *request) {
    return diagSendBody(fd, type, flags, sequence, request, sizeof *request);
}

// One datagram; SO_RCVTIMEO's EAGAIN becomes ETIMEDOUT, a datagram larger than the buffer EMSGSIZE.
static int diagReceive(int fd, char *buffer) {
    for (int attempt = 0; attempt < 8; attempt++) {
        ssize_t length = recv(fd, buffer, DIAG_BUFFER, MSG_TRUNC);
        if (length > DIAG_BUFFER) { errno = EMSGSIZE; return -1; }
        if (length >= 0) return (int)length;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) errno = ETIMEDOUT;
        return -1;
    }
    return -1;
}

// The error an NLMSG_ERROR or NLMSG_DONE message carries, as a positive errno (0: none).
static int diagError(const struct nlmsghdr *header) {
    if (header->nlmsg_len < NLMSG_LENGTH(sizeof(int))) return EPROTO;
    int error = *(const int *)NLMSG_DATA(header);
    return error < 0 ? -error : 0;
}

// Dumps the TCP sockets of `family` whose state is in the `states` mask, calling `each` for every
// one (a non-zero return stops the walk with -1). The dump's sequence number is `family` (2 or 10).
// AF_UNSPEC dumps both families in one walk of the kernel's tables, with the older
// TCPDIAG_GETSOCK request (the kernel answers it for every family; SOCK_DIAG_BY_FAMILY wants one).
static int diagDump(int fd, char *buffer, unsigned char family, unsigned int states,
                    int (*each)(void *context, const struct inet_diag_msg *message), void *context) {
    unsigned short type = family == AF_UNSPEC ? TCPDIAG_GETSOCK : SOCK_DIAG_BY_FAMILY;
    int sent;
    if (family == AF_UNSPEC) {
        struct inet_diag_req request;
        memset(&request, 0, sizeof request);
        request.idiag_family = AF_INET;
        request.idiag_states = states;
        sent = diagSendBody(fd, type, NLM_F_REQUEST | NLM_F_DUMP, family, &request, sizeof request);
    } else {
        struct inet_diag_req_v2 request;
        memset(&request, 0, sizeof request);
        request.sdiag_family = family;
        request.sdiag_protocol = IPPROTO_TCP;
        request.idiag_states = states;
        sent = diagSend(fd, type, NLM_F_REQUEST | NLM_F_DUMP, family, &request);
    }
    if (sent != 0) return -1;
    for (int datagram = 0; datagram < DIAG_MAX_DATAGRAMS; datagram++) {
        int length = diagReceive(fd, buffer);
        if (length < 0) return -1;
        for (struct nlmsghdr *header = (struct nlmsghdr *)buffer; NLMSG_OK(header, length);
             header = NLMSG_NEXT(header, length)) {
            if (header->nlmsg_seq != family) continue;
            if (header->nlmsg_type == NLMSG_DONE || header->nlmsg_type == NLMSG_ERROR) {
                errno = diagError(header);
                return errno ? -1 : 0;
            }
            if (header->nlmsg_type != type) continue;
            if (header->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg))) continue;
            if (each(context, NLMSG_DATA(header)) != 0) return -1;
        }
    }
    errno = EOVERFLOW;
    return -1;
}

static int diagCollectOne(void *context, const struct inet_diag_msg *message) {
    struct DiagQuery *query = context;
    return diagSelects(query, message) ? diagAppend(query, message) : 0;
}

// Dumps the TCP sockets of `family` in every state but LISTEN and TIME_WAIT; keeps the selected.
static int diagCollect(int fd, char *buffer, unsigned char family, struct DiagQuery *query) {
    return diagDump(fd, buffer, family, ~((1u << TCP_LISTEN) | (1u << TCP_TIME_WAIT)), diagCollectOne, query);
}

// SOCK_DESTROY of one socket, found by its full identity (the cookie makes a reused 4-tuple
// ESTALE). The kernel's answer as a positive errno; 0: destroyed.
static int diagDestroy(int fd, char *buffer, const struct DiagMatch *match, unsigned int sequence) {
    struct inet_diag_req_v2 request;
    memset(&request, 0, sizeof request);
    request.sdiag_family = match->family;
    request.sdiag_protocol = IPPROTO_TCP;
    request.idiag_states = ~0u;
    request.id = match->id;
    if (diagSend(fd, SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK, sequence, &request) != 0) return errno;
    for (int datagram = 0; datagram < 8; datagram++) {
        int length = diagReceive(fd, buffer);
        if (length < 0) return errno;
        for (struct nlmsghdr *header = (struct nlmsghdr *)buffer; NLMSG_OK(header, length);
             header = NLMSG_NEXT(header, length)) {
            if (header->nlmsg_seq == sequence && header->nlmsg_type == NLMSG_ERROR) return diagError(header);
        }
    }
    return EPROTO;
}

int CRingfenceLinux_destroySockets(int family, const unsigned char *address, int prefixLength,
                                   const unsigned short *keepLocalPorts, int keepCount, int onlyThesePorts,
                                   int *destroyed) {
    *destroyed = 0;
    int width = family == AF_INET ? 32 : family == AF_INET6 ? 128 : -1;
    if (!address || prefixLength < 0 || prefixLength > width || keepCount < 0 || (keepCount > 0 && !keepLocalPorts)) {
        errno = EINVAL;
        return -1;
    }
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) return -1;
    struct DiagQuery query = { family, prefixLength, keepCount, onlyThesePorts != 0, address, keepLocalPorts, NULL, 0, 0 };
    char *buffer = malloc(DIAG_BUFFER);
    // A bounded wait for every answer: a kick must never hang the daemon.
    struct timeval timeout = { .tv_sec = 2, .tv_usec = 0 };
    int result = buffer && setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) == 0 ? 0 : -1;
    // AF_INET6 always; for an IPv4 block also AF_INET (then AF_INET6 matches only mapped peers).
    if (result == 0) result = diagCollect(fd, buffer, AF_INET6, &query);
    if (result == 0 && family == AF_INET) result = diagCollect(fd, buffer, AF_INET, &query);
    for (size_t i = 0; result == 0 && i < query.count; i++) {
        int error = diagDestroy(fd, buffer, &query.matches[i], (unsigned int)(i + 100));
        if (error == 0) {
            (*destroyed)++;
        } else if (error != ENOENT && error != ESTALE) {  // Gone meanwhile (its peer's reset, say): fine.
            errno = error;
            result = -1;
        }
    }
    int saved = errno;
    free(buffer);
    free(query.matches);
    close(fd);
    errno = saved;
    return result;
}

// ---- sock_diag: list TCP sockets (the listener watch, `proxyctl listeners`). ----

struct DiagListing {
    int localPort;
    struct CRingfenceLinux_TCPSocket *sockets;
    size_t count, capacity;
};

static int diagListOne(void *context, const struct inet_diag_msg *message) {
    struct DiagListing *listing = context;
    unsigned short local = ntohs(message->id.idiag_sport);
    if (listing->localPort >= 0 && local != listing->localPort) return 0;
    void *sockets = listing->sockets;
    int reserved = diagReserve(&sockets, &listing->capacity, listing->count, sizeof *listing->sockets);
    listing->sockets = sockets;
    if (reserved != 0) return -1;
    struct CRingfenceLinux_TCPSocket *row = &listing->sockets[listing->count++];
    memset(row, 0, sizeof *row);
    row->family = message->idiag_family;
    row->state = message->idiag_state;
    row->localPort = local;
    row->remotePort = ntohs(message->id.idiag_dport);
    memcpy(row->local, message->id.idiag_src, 16);
    memcpy(row->remote, message->id.idiag_dst, 16);
    row->uid = message->idiag_uid;
    row->inode = message->idiag_inode;
    return 0;
}

int CRingfenceLinux_openSockDiag(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) return -1;
    // A bounded wait for every answer: a listing must never hang its caller.
    struct timeval timeout = { .tv_sec = 2, .tv_usec = 0 };
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int CRingfenceLinux_listTCPSockets(int diagFD, int family, unsigned int states, int localPort,
                                   struct CRingfenceLinux_TCPSocket **sockets, int *count) {
    *sockets = NULL;
    *count = 0;
    if ((family != AF_INET && family != AF_INET6 && family != AF_UNSPEC) || localPort > 65535) {
        errno = EINVAL;
        return -1;
    }
    int fd = diagFD >= 0 ? diagFD : CRingfenceLinux_openSockDiag();
    if (fd < 0) return -1;
    struct DiagListing listing = { localPort, NULL, 0, 0 };
    char *buffer = malloc(DIAG_BUFFER);
    int result = buffer ? diagDump(fd, buffer, (unsigned char)family, states, diagListOne, &listing) : -1;
    int saved = errno;
    free(buffer);
    if (fd != diagFD) close(fd);
    if (result == 0) {
        *sockets = listing.sockets;
        *count = (int)listing.count;
    } else {
        free(listing.sockets);
    }
    errno = saved;
    return result;
}

void CRingfenceLinux_freeTCPSockets(struct CRingfenceLinux_TCPSocket *sockets) { free(sockets); }

int CRingfenceLinux_dnsQuery(const char *name, int type, unsigned char *answer, int length) {
    struct __res_state state;
    memset(&state, 0, sizeof state);
    if (res_ninit(&state) != 0) {
        res_nclose(&state);
        return -1;
    }
    int count = res_nsearch(&state, name, ns_c_in, type, answer, length);
    res_nclose(&state);
    return count;
}
