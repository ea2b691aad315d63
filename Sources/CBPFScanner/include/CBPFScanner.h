/* closewaitd's eBPF loader: opens, loads and attaches the programs of closewait.bpf.c (the
 * generated skeleton, committed) and hands them over as file descriptors; passes run on the
 * iterator link. No libbpf type is visible here, so Swift imports only this. */
#ifndef CBPFSCANNER_H
#define CBPFSCANNER_H

#include <stddef.h>
#include <stdint.h>
#include "cw_record.h"

enum cw_attach {
    CW_ATTACH_TP_BTF = 1, /* tp_btf/inet_sock_set_state */
    CW_ATTACH_RAW_TP = 2, /* raw_tp/inet_sock_set_state (the BTF-typed attach was refused) */
};

/* Where opening failed. */
enum cw_stage {
    CW_STAGE_OPEN = 1,   /* parsing the embedded object */
    CW_STAGE_LOAD = 2,   /* relocation or the verifier */
    CW_STAGE_ATTACH = 3, /* the iterator link or the tracepoint */
};

/* The loaded programs as file descriptors: what a loader process hands over. libbpf parses
 * the kernel's BTF (5.5 MB here) to relocate the programs, ~12 MiB at its peak: a short-lived
 * helper process loads them (`closewaitd bpf-loader`), and the daemon keeps only these. */
struct cw_handles {
    int iter_link;    /* the iterator's link: BPF_ITER_CREATE on it starts a pass */
    int state_link;   /* the state-change program's link (kept open: closing detaches) */
    int counters_map; /* the .bss map holding struct cw_counters (mmap'able) */
    int attach;       /* enum cw_attach */
};

/* In the helper: loads (see cw_load_here) and sends the outcome over `sock` (a SEQPACKET
 * socket): the handles' fds (SCM_RIGHTS) on success, the error, stage and log otherwise.
 * Returns the process's exit status. */
int cw_helper_main(int sock, uint32_t state_mask, int reject);

/* In the daemon: runs `exe` with `argv` (the helper; its end of a socket pair is fd 3) and
 * waits up to `timeout_ms` for its answer. On failure returns -1 with *error, *stage and the
 * helper's log in `log`; `stage` 0 means the helper itself failed (spawn, timeout, exit). */
int cw_load_in_helper(const char *exe, char *const argv[], int timeout_ms, struct cw_handles *out, char *log,
                      size_t loglen, int *error, int *stage);

/* The same in this process (tests and the benchmark, which are not `closewaitd`): libbpf's
 * memory is freed again once the handles are taken. `state_mask`: bit (1 << TCP state) for
 * each wanted state; pids are reported as the caller's pid namespace numbers them (its
 * /proc). `reject`: also load a program the verifier must refuse (tests of the refusal path).
 * On failure returns -1 with *error (a negative errno), *stage, and libbpf's and the
 * verifier's messages in `log` (NUL-terminated, cut at `loglen`). */
int cw_load_here(uint32_t state_mask, int reject, struct cw_handles *out, char *log, size_t loglen, int *error,
                 int *stage);

/* A new pass on an iterator link: a file descriptor to read() records from, or -errno. */
int cw_iter_open(int iter_link);

/* The counters in the .bss map, mapped read-only (NULL and errno set on failure). */
const volatile struct cw_counters *cw_counters_map(int map_fd);

#endif
