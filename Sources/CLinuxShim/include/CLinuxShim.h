#ifndef CLOSEWAITD_CLINUXSHIM_H
#define CLOSEWAITD_CLINUXSHIM_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
// Kernel UAPI headers for the netlink sock_diag socket, and signalfd for the workload. Swift reads the constants and the
// sockaddr_nl layout from here; message bodies are decoded by offset in CloseWaitCore.
#include <sys/socket.h>
#include <sys/signalfd.h>
#include <malloc.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/inet_diag.h>

/* CPUs in this process's affinity mask (sched_getaffinity is a GNU extension), or -1. */
static inline int cw_affinity_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    return CPU_COUNT(&set);
}

static const int cw_netlink_sock_diag = NETLINK_SOCK_DIAG;
static const int cw_sock_diag_by_family = SOCK_DIAG_BY_FAMILY;
static const unsigned long cw_sizeof_inet_diag_req_v2 = sizeof(struct inet_diag_req_v2);
static const unsigned long cw_sizeof_inet_diag_msg = sizeof(struct inet_diag_msg);
#endif
