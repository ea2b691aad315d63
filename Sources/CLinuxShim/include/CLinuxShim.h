#ifndef CLOSEWAITD_CLINUXSHIM_H
#define CLOSEWAITD_CLINUXSHIM_H

// Kernel UAPI headers for the netlink sock_diag socket, and signalfd for the workload. Swift reads the constants and the
// sockaddr_nl layout from here; message bodies are decoded by offset in CloseWaitCore.
#include <sys/socket.h>
#include <sys/signalfd.h>
#include <malloc.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/inet_diag.h>

/* CPUs in this process's affinity mask, or -1 (shim.c: sched_getaffinity is a GNU extension,
   and defining _GNU_SOURCE here would change the system headers' types for every importer). */
int cw_affinity_cpu_count(void);
/* accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC): a GNU extension Glibc does not export to Swift. */
int cw_accept_nonblocking(int fd);

#include <sys/types.h>
/* fork + exec for an action's command: see shim.c. */
pid_t cw_spawn(char *const argv[], char *const envp[], int output_fd, int error_fd);
int cw_pipe_cloexec(int fds[2]);

static const int cw_netlink_sock_diag = NETLINK_SOCK_DIAG;
static const int cw_sock_diag_by_family = SOCK_DIAG_BY_FAMILY;
static const unsigned long cw_sizeof_inet_diag_req_v2 = sizeof(struct inet_diag_req_v2);
static const unsigned long cw_sizeof_inet_diag_msg = sizeof(struct inet_diag_msg);
#endif
