/* The record the iterator writes for each socket, shared by the BPF program and the loader.
 * Fixed size, naturally aligned, no padding: 88 bytes. */
#ifndef CW_RECORD_H
#define CW_RECORD_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define CW_REC_FROM_BACKLOG 1 /* a connection in a listener's accept queue (no fd yet) */

struct cw_record {
    __u64 sock;     /* the socket's kernel address: an identity within one pass, never shown */
    __u64 inode;    /* the socket inode (`socket:[N]`); 0 for a connection in a backlog */
    __u64 since_ns; /* CLOCK_MONOTONIC when it entered CLOSE_WAIT, 0 when not known */
    __u32 tgid;     /* the process holding it (the listener's holder for a backlog entry) */
    __u32 fd;
    __u32 netns;    /* network namespace inode */
    __u32 uid;
    __u32 rqueue;
    __u32 wqueue;
    __u16 family;
    __u16 sport;    /* host order */
    __u16 dport;    /* host order */
    __u8 state;
    __u8 flags;
    __u8 saddr[16];
    __u8 daddr[16];
};

/* The counters the state-change program keeps, in the object's .bss (mmap'd by the loader). */
struct cw_counters {
    __u64 entered;        /* sockets that entered CLOSE_WAIT since load */
    __u64 left;           /* sockets that left it */
    __u64 since_full;     /* entry times not kept: the map was full */
    __u64 backlog_cut;    /* accept queues not walked to their end (longer than the bound) */
    __u64 set_hash;       /* XOR of a hash of every socket in CLOSE_WAIT that entered since load:
                           * a socket that enters and leaves between two reads cancels out, so
                           * the set's fingerprint moves only when the set at the read differs */
};

#endif
