/* The kernel types closewait.bpf.c reads, and only the fields it reads. Every struct is
 * relocated by libbpf against the running kernel's BTF (CO-RE): the offsets here are never
 * used as they are, only the names, so a kernel that moves a field still loads; one that
 * renames or drops it is refused at load, said, and the daemon polls. Anonymous unions of the
 * kernel's definitions are flattened (libbpf matches members through them by name).
 * This replaces the 2.8 MB vmlinux.h that `bpftool btf dump` would generate. */
#ifndef CW_TYPES_H
#define CW_TYPES_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
enum { false = 0, true = 1 };

enum bpf_map_type {
    BPF_MAP_TYPE_HASH = 1,
    BPF_MAP_TYPE_ARRAY = 2,
};
enum { BPF_ANY = 0, BPF_NOEXIST = 1 };
enum { BPF_F_NO_PREALLOC = 1 };

#define CW_CORE __attribute__((preserve_access_index))

struct in6_addr {
    __u8 bytes[16]; /* a union of views in the kernel; copied whole */
};

struct ns_common {
    unsigned int inum;
} CW_CORE;

struct net {
    struct ns_common ns;
} CW_CORE;

typedef struct {
    struct net *net;
} possible_net_t;

typedef struct {
    unsigned int val;
} kuid_t;

struct sock_common {
    __be32 skc_daddr;
    __be32 skc_rcv_saddr;
    __be16 skc_dport;
    __u16 skc_num;
    unsigned short skc_family;
    volatile unsigned char skc_state;
    possible_net_t skc_net;
    struct in6_addr skc_v6_daddr;
    struct in6_addr skc_v6_rcv_saddr;
} CW_CORE;

struct sock {
    struct sock_common __sk_common;
    __u16 sk_type;     /* u16 since Linux 5.6 (read only by the 6.2+ object) */
    __u16 sk_protocol;
    kuid_t sk_uid;
    __u32 sk_ack_backlog;
    __u32 sk_max_ack_backlog;
} CW_CORE;

struct request_sock {
    struct request_sock *dl_next;
    struct sock *sk;
} CW_CORE;

struct request_sock_queue {
    struct request_sock *rskq_accept_head;
} CW_CORE;

struct inet_connection_sock {
    struct request_sock_queue icsk_accept_queue;
} CW_CORE;

struct tcp_sock {
    struct inet_connection_sock inet_conn;
    __u32 rcv_nxt;
    __u32 copied_seq;
    __u32 write_seq;
    __u32 snd_una;
} CW_CORE;

struct socket {
    struct sock *sk;
} CW_CORE;

struct inode {
    unsigned long i_ino;
} CW_CORE;

struct file {
    struct inode *f_inode;
} CW_CORE;

/* Declared whole: pid->numbers[] is indexed, and an index counts in this type's size. */
struct pid_namespace;
struct upid {
    int nr;
    struct pid_namespace *ns;
} CW_CORE;

struct pid {
    unsigned int level;
    struct upid numbers[1]; /* flexible in the kernel: one per pid namespace level */
} CW_CORE;

struct task_struct {
    int pid;
    int tgid;
    struct task_struct *group_leader;
    struct pid *thread_pid;
} CW_CORE;

struct seq_file;

struct bpf_iter_meta {
    struct seq_file *seq;
    __u64 session_id;
    __u64 seq_num;
} CW_CORE;

struct bpf_iter__task_file {
    struct bpf_iter_meta *meta;
    struct task_struct *task;
    __u32 fd;
    struct file *file;
} CW_CORE;

/* Types the helper declarations name. */
struct bpf_map;
struct __sk_buff;
struct xdp_md;
struct sk_msg_md;
struct bpf_sock;
struct bpf_sock_addr;
struct bpf_sock_ops;
struct bpf_sock_tuple;
struct bpf_tcp_sock;
struct bpf_xfrm_state;
struct bpf_perf_event_data;
struct bpf_perf_event_value;
struct bpf_pidns_info;
struct bpf_redir_neigh;
struct bpf_spin_lock;
struct bpf_sysctl;
struct bpf_timer;
struct bpf_dynptr;
struct bpf_fib_lookup;
struct bpf_sk_lookup;
struct sk_reuseport_md;
struct pt_regs;
struct btf_ptr;
struct linux_binprm;
struct path;
struct tcphdr;
struct tcp6_sock;
struct tcp_timewait_sock;
struct tcp_request_sock;
struct udp6_sock;
struct unix_sock;
struct mptcp_sock;
struct inode;
struct cgroup;
struct bpf_cpumask;
struct cpumask;
struct sockaddr;
struct iphdr;
struct ipv6hdr;
struct bpf_prog;
struct bpf_tunnel_key;

#endif
