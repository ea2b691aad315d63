// SPDX-License-Identifier: GPL-2.0-only
/* closewaitd's kernel side.
 *
 * - `scan` (iter/task_file) visits every open file of every process in one read() of its
 *   iterator; for TCP sockets in the wanted states it writes a struct cw_record. A listener's
 *   accept queue is walked too: a connection the peer closed before anyone accepted it is in
 *   CLOSE_WAIT with no fd (inode 0), reported under the listener's holder with
 *   CW_REC_FROM_BACKLOG. One pass covers every network namespace, forked children (each
 *   holder) and passed fds (the receiver).
 * - `on_state` (tp_btf/inet_sock_set_state, or `on_state_raw`, raw_tp, where the BTF-typed
 *   attach is refused) counts sockets entering and leaving CLOSE_WAIT and keeps the time each
 *   entered it. It never says who owns a socket: when a FIN arrives, the task on the CPU is
 *   whoever happened to run (the peer, on loopback).
 *
 * Every kernel field is a direct BTF-typed load relocated by libbpf (CO-RE); no
 * bpf_probe_read_kernel, so the programs load under lockdown. */
#include "cw_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "../include/cw_record.h"

#define AF_INET 2
#define AF_INET6 10
#define TCP_CLOSE_WAIT 8
#define TCP_LISTEN 10
#define IPPROTO_TCP 6
#define SOCK_STREAM 1

/* A socket reached from a file (sock->sk) or an accept queue (req->sk) as a tcp_sock, or NULL
 * when it is not TCP. Since Linux 6.2 such pointers are "untrusted", which
 * bpf_skc_to_tcp_sock refuses: there the kfunc bpf_rdonly_cast makes a read-only view after
 * checking the protocol. Before, bpf_skc_to_tcp_sock takes them and checks it itself. The two
 * are two objects (the compat one built with CW_COMPAT); the loader tries this one first. */
#ifdef CW_COMPAT
static __always_inline struct tcp_sock *as_tcp(struct sock *sk)
{
    return bpf_skc_to_tcp_sock(sk);
}
#else
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
static __always_inline struct tcp_sock *as_tcp(struct sock *sk)
{
    if (sk->sk_protocol != IPPROTO_TCP || sk->sk_type != SOCK_STREAM)
        return 0;
    return bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
}
#endif
/* Accept-queue entries walked per listener at most (the verifier needs a bound). */
#define BACKLOG_WALK 256

char LICENSE[] SEC("license") = "GPL";

/* Bit (1 << state) for each wanted TCP state; set by the loader before load. */
volatile const __u32 state_mask = 1u << TCP_CLOSE_WAIT;

struct cw_counters counters = {};

/* Pid namespaces nested deeper than this (below the reader's) are not translated. */
#define PID_LEVELS 8

/* The pid of `task`'s process as the reader sees it. The iterator visits the tasks of the
 * reader's pid namespace (the task running read(): the daemon), but task->tgid is the
 * host's number; inside a container the daemon needs the number its own /proc shows. */
static __always_inline __u32 visible_tgid(struct task_struct *task, unsigned int level)
{
    if (level == 0)
        return task->tgid;
    struct pid *pid = task->group_leader->thread_pid;
    if (!pid || pid->level < level)
        return 0;
    /* Constant offsets only (a variable one into a kernel struct is refused). */
#pragma unroll
    for (int i = 1; i < PID_LEVELS; i++)
        if (i == level)
            return pid->numbers[i].nr;
    return 0;
}

static __always_inline unsigned int reader_level(void)
{
    struct task_struct *me = bpf_get_current_task_btf();
    struct pid *pid = me->thread_pid;
    return pid ? pid->level : 0;
}

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 262144);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, __u64);   /* the socket's address */
    __type(value, __u64); /* CLOCK_MONOTONIC ns it entered CLOSE_WAIT */
} since SEC(".maps");

static __always_inline void fill(struct cw_record *r, struct sock *sk, struct tcp_sock *tp, int state)
{
    r->sock = (__u64)sk;
    r->family = sk->__sk_common.skc_family;
    r->state = state;
    r->sport = sk->__sk_common.skc_num;
    r->dport = __builtin_bswap16(sk->__sk_common.skc_dport);
    r->netns = sk->__sk_common.skc_net.net->ns.inum;
    r->uid = sk->sk_uid.val;
    if (r->family == AF_INET6) {
        __builtin_memcpy(r->saddr, &sk->__sk_common.skc_v6_rcv_saddr, 16);
        __builtin_memcpy(r->daddr, &sk->__sk_common.skc_v6_daddr, 16);
    } else {
        __builtin_memcpy(r->saddr, &sk->__sk_common.skc_rcv_saddr, 4);
        __builtin_memcpy(r->daddr, &sk->__sk_common.skc_daddr, 4);
    }
    if (state == TCP_LISTEN) {
        r->rqueue = sk->sk_ack_backlog;
        r->wqueue = sk->sk_max_ack_backlog;
    } else {
        __s32 unread = (__s32)(tp->rcv_nxt - tp->copied_seq);
        r->rqueue = unread > 0 ? unread : 0;
        r->wqueue = tp->write_seq - tp->snd_una;
    }
    if (state == TCP_CLOSE_WAIT) {
        __u64 key = (__u64)sk;
        __u64 *at = bpf_map_lookup_elem(&since, &key);
        r->since_ns = at ? *at : 0;
    }
}

SEC("iter/task_file")
int scan(struct bpf_iter__task_file *ctx)
{
    struct seq_file *seq = ctx->meta->seq;
    struct task_struct *task = ctx->task;
    struct file *file = ctx->file;
    if (!task || !file)
        return 0;
    struct socket *sock = bpf_sock_from_file(file);
    if (!sock)
        return 0;
    struct sock *sk = sock->sk;
    if (!sk)
        return 0;
    struct tcp_sock *tp = as_tcp(sk);
    if (!tp)
        return 0;
    int family = sk->__sk_common.skc_family;
    if (family != AF_INET && family != AF_INET6)
        return 0;
    int state = sk->__sk_common.skc_state;
    if (!(state_mask & (1u << state)) && state != TCP_LISTEN)
        return 0;
    __u32 tgid = visible_tgid(task, reader_level());
    struct cw_record r = {};
    if (state_mask & (1u << state)) {
        fill(&r, sk, tp, state);
        r.tgid = tgid;
        r.fd = ctx->fd;
        r.inode = file->f_inode->i_ino;
        bpf_seq_write(seq, &r, sizeof(r));
    }
    if (state != TCP_LISTEN)
        return 0;
    /* Connections accepted by the kernel but not yet by the process. */
    struct request_sock *req = tp->inet_conn.icsk_accept_queue.rskq_accept_head;
    for (int i = 0; i < BACKLOG_WALK; i++) {
        if (!req)
            return 0;
        struct sock *child = req->sk;
        if (child) {
            struct tcp_sock *ctp = as_tcp(child);
            int cstate = child->__sk_common.skc_state;
            if (ctp && (state_mask & (1u << cstate))) {
                struct cw_record c = {};
                fill(&c, child, ctp, cstate);
                c.tgid = tgid;
                c.fd = ctx->fd;
                c.flags = CW_REC_FROM_BACKLOG;
                bpf_seq_write(seq, &c, sizeof(c));
            }
        }
        req = req->dl_next;
    }
    if (req)
        __sync_fetch_and_add(&counters.backlog_cut, 1);
    return 0;
}

/* A 64-bit mix of the socket's address (splitmix64's finaliser). */
static __always_inline __u64 mix(__u64 x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* XOR into the set's fingerprint. The compat object (kernels before 5.12 have no atomic
 * XOR) updates it without an atomic: the count of sockets in CLOSE_WAIT (atomic adds) still
 * moves with every entry or exit, so a lost update alone cannot hide a change; two lost at
 * once that cancel out in count as well are left to the next audit pass. */
static __always_inline void toggle(__u64 id)
{
#ifdef CW_COMPAT
    counters.set_hash ^= id;
#else
    __sync_fetch_and_xor(&counters.set_hash, id);
#endif
}

/* The socket's identity for the fingerprint, as a number the verifier lets us compute with
 * (arithmetic on a kernel pointer is refused): its addresses, ports and namespace, which do
 * not change between entering and leaving CLOSE_WAIT and tell one connection from another. */
static __always_inline __u64 identity(struct sock *sk)
{
    struct sock_common *c = &sk->__sk_common;
    __u64 id = mix(((__u64)c->skc_rcv_saddr << 32) | c->skc_daddr);
    id = mix(id ^ (((__u64)c->skc_num << 48) | ((__u64)c->skc_dport << 32) | c->skc_net.net->ns.inum));
    if (c->skc_family == AF_INET6) {
        __u64 words[4];
        __builtin_memcpy(words, &c->skc_v6_rcv_saddr, 16);
        __builtin_memcpy(&words[2], &c->skc_v6_daddr, 16);
        for (int i = 0; i < 4; i++)
            id = mix(id ^ words[i]);
    }
    return id;
}

static __always_inline void changed(__u64 key, __u64 id, int oldstate, int newstate)
{
    if (newstate == TCP_CLOSE_WAIT || oldstate == TCP_CLOSE_WAIT)
        toggle(id);
    if (newstate == TCP_CLOSE_WAIT) {
        __sync_fetch_and_add(&counters.entered, 1);
        __u64 now = bpf_ktime_get_ns();
        if (bpf_map_update_elem(&since, &key, &now, BPF_ANY))
            __sync_fetch_and_add(&counters.since_full, 1);
    } else if (oldstate == TCP_CLOSE_WAIT) {
        __sync_fetch_and_add(&counters.left, 1);
        bpf_map_delete_elem(&since, &key);
    }
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_state, struct sock *sk, int oldstate, int newstate)
{
    if (newstate != TCP_CLOSE_WAIT && oldstate != TCP_CLOSE_WAIT)
        return 0;
    changed((__u64)sk, identity(sk), oldstate, newstate);
    return 0;
}

/* The same without BTF-typed arguments: only the raw values are used (no load at all). */
SEC("raw_tp/inet_sock_set_state")
int on_state_raw(__u64 *ctx)
{
    /* No kernel reads here: the socket's address, a plain number in this program type. */
    changed(ctx[0], mix(ctx[0]), (int)ctx[1], (int)ctx[2]);
    return 0;
}

/* Loaded only when a test asks for it (CLOSEWAITD_BPF_FAULT=verifier): the file pointer may be
 * NULL and is used unchecked, which the verifier must refuse. Shows the refusal path with the
 * real verifier's words. */
SEC("iter/task_file")
int must_refuse(struct bpf_iter__task_file *ctx)
{
    return ctx->file->f_inode != 0;
}
