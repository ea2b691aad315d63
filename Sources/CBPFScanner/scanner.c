#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "CBPFScanner.h"
#include "closewait.skel.h"

#include "closewait_compat.skel.h"

/* The two objects' skeletons differ only in type: what the loader uses of either. */
struct cw_objects {
    void *skel;
    void (*destroy)(void *);
    struct bpf_program *scan, *on_state, *on_state_raw;
    struct bpf_map *counters_map;
};

struct cw_scanner {
    struct cw_objects o;
    struct bpf_link *iter;
    struct bpf_link *state;
    int attach;
};

/* libbpf's messages (and the verifier's log it prints) while one open runs. */
static char *captured;
static size_t captured_len, captured_cap;

static int capture(enum libbpf_print_level level, const char *format, va_list args)
{
    if (level == LIBBPF_DEBUG || !captured || captured_len + 1 >= captured_cap)
        return 0;
    int n = vsnprintf(captured + captured_len, captured_cap - captured_len, format, args);
    if (n > 0)
        captured_len += (size_t)n < captured_cap - captured_len ? (size_t)n : captured_cap - captured_len - 1;
    return 0;
}

static void unload(struct cw_scanner *s)
{
    bpf_link__destroy(s->iter);
    bpf_link__destroy(s->state);
    s->iter = s->state = NULL;
    if (s->o.skel)
        s->o.destroy(s->o.skel);
    s->o.skel = NULL;
}

/* Opens and loads one object with one of the two state-change programs: 0, or a negative
 * errno with *stage set. */
#define LOAD_OBJECT(NAME)                                                                          \
    static void NAME##_destroy_any(void *skel) { NAME##__destroy(skel); }                          \
    static int NAME##_load(struct cw_objects *o, uint32_t state_mask, int reject, int raw, int *stage) \
    {                                                                                              \
        struct NAME *skel = NAME##__open();                                                        \
        if (!skel) {                                                                               \
            *stage = CW_STAGE_OPEN;                                                                \
            return errno ? -errno : -EINVAL;                                                       \
        }                                                                                          \
        o->skel = skel;                                                                            \
        o->destroy = NAME##_destroy_any;                                                           \
        o->scan = skel->progs.scan;                                                                \
        o->on_state = skel->progs.on_state;                                                        \
        o->on_state_raw = skel->progs.on_state_raw;                                                \
        skel->rodata->state_mask = state_mask;                                                     \
        bpf_program__set_autoload(skel->progs.on_state, !raw);                                     \
        bpf_program__set_autoload(skel->progs.on_state_raw, raw);                                  \
        bpf_program__set_autoload(skel->progs.must_refuse, reject != 0);                           \
        int err = NAME##__load(skel);                                                              \
        if (err) {                                                                                 \
            *stage = CW_STAGE_LOAD;                                                                \
            return err;                                                                            \
        }                                                                                          \
        o->counters_map = skel->maps.bss;                                                          \
        return 0;                                                                                  \
    }
LOAD_OBJECT(closewait_bpf)
LOAD_OBJECT(closewait_compat_bpf)

/* Loads and attaches with `raw` choosing the state-change program; 0 or a negative errno. */
static int start(struct cw_scanner *s, int compat, uint32_t state_mask, int reject, int raw, int *stage)
{
    int err = compat ? closewait_compat_bpf_load(&s->o, state_mask, reject, raw, stage)
                     : closewait_bpf_load(&s->o, state_mask, reject, raw, stage);
    if (err)
        return err;
    *stage = CW_STAGE_ATTACH;
    s->iter = bpf_program__attach_iter(s->o.scan, NULL);
    if (!s->iter)
        return -errno;
    s->state = bpf_program__attach(raw ? s->o.on_state_raw : s->o.on_state);
    if (!s->state)
        return -errno;
    s->attach = raw ? CW_ATTACH_RAW_TP : CW_ATTACH_TP_BTF;
    return 0;
}

/* Opens, loads and attaches: the 6.2+ object, then the compat one, each with the BTF-typed
 * tracepoint, then the raw one. NULL on failure, with the first refusal in *error/*stage. */
static struct cw_scanner *cw_scanner_open(uint32_t state_mask, int reject, char *log, size_t loglen, int *error,
                                          int *stage)
{
    captured = log;
    captured_len = 0;
    captured_cap = loglen;
    if (loglen)
        log[0] = 0;
    libbpf_set_print(capture);
    struct cw_scanner *s = calloc(1, sizeof(*s));
    int err = -ENOMEM;
    *stage = CW_STAGE_OPEN;
    if (s) {
        /* The 6.2+ object, then the compat one; each with the BTF-typed tracepoint, then the
         * raw one. The log keeps every attempt's messages; the first refusal is the reason. */
        int first = 0, first_stage = 0;
        for (int attempt = 0; attempt < 4; attempt++) {
            err = start(s, attempt / 2, state_mask, reject, attempt % 2, stage);
            if (!err)
                break;
            if (!first) {
                first = err;
                first_stage = *stage;
            }
            unload(s);
            /* A refused program is refused with either tracepoint: on to the compat object. */
            if (attempt % 2 == 0 && *stage != CW_STAGE_ATTACH)
                attempt++;
        }
        if (err) {
            err = first;
            *stage = first_stage;
        }
    }
    libbpf_set_print(NULL);
    captured = NULL;
    if (err) {
        free(s);
        *error = err < 0 ? err : -EINVAL;
        return NULL;
    }
    return s;
}

static void cw_scanner_close(struct cw_scanner *s)
{
    if (!s)
        return;
    unload(s);
    free(s);
}

/* The helper's answer: a fixed header, then the log text. */
struct cw_answer {
    int32_t ok, error, stage, attach;
};

int cw_helper_main(int sock, uint32_t state_mask, int reject)
{
    static char log[1 << 16];
    int error = 0, stage = 0;
    struct cw_scanner *s = cw_scanner_open(state_mask, reject, log, sizeof(log), &error, &stage);
    struct cw_answer answer = {s != NULL, error, stage, s ? s->attach : 0};
    struct iovec iov[2] = {{&answer, sizeof(answer)}, {log, s ? 0 : strnlen(log, sizeof(log))}};
    union {
        char buf[CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    if (s) {
        int fds[3] = {bpf_link__fd(s->iter), bpf_link__fd(s->state), bpf_map__fd(s->o.counters_map)};
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof(control.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(fds));
        memcpy(CMSG_DATA(c), fds, sizeof(fds));
    }
    ssize_t sent;
    do {
        sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    /* No teardown: the daemon holds the links now; exiting closes this process's copies. */
    return sent < 0 ? 1 : 0;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int cw_load_in_helper(const char *exe, char *const argv[], int timeout_ms, struct cw_handles *out, char *log,
                      size_t loglen, int *error, int *stage)
{
    *stage = 0;
    if (loglen)
        log[0] = 0;
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
        *error = -errno;
        return -1;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pair[1], 3);
    pid_t pid;
    extern char **environ;
    int rc = posix_spawn(&pid, exe, &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(pair[1]);
    if (rc != 0) {
        close(pair[0]);
        *error = -rc;
        return -1;
    }
    struct cw_answer answer = {0};
    union {
        char buf[CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov[2] = {{&answer, sizeof(answer)}, {log, loglen ? loglen - 1 : 0}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2, .msg_control = control.buf,
                         .msg_controllen = sizeof(control.buf)};
    ssize_t got = -1;
    double deadline = now_ms() + timeout_ms;
    for (;;) {
        struct pollfd p = {pair[0], POLLIN, 0};
        int left = (int)(deadline - now_ms());
        int ready = poll(&p, 1, left > 0 ? left : 0);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0) {
            *error = -ETIMEDOUT;
            break;
        }
        got = recvmsg(pair[0], &msg, MSG_CMSG_CLOEXEC);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            *error = -errno;
        break;
    }
    close(pair[0]);
    if (got < 0)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (got < (ssize_t)sizeof(answer)) {
        if (got >= 0)
            *error = -EPROTO; /* the helper ended without answering (crashed, refused to run) */
        return -1;
    }
    if (loglen)
        log[got - sizeof(answer) < loglen ? got - sizeof(answer) : loglen - 1] = 0;
    if (!answer.ok) {
        *error = answer.error;
        *stage = answer.stage;
        return -1;
    }
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(3 * sizeof(int))) {
        *error = -EPROTO;
        return -1;
    }
    int fds[3];
    memcpy(fds, CMSG_DATA(c), sizeof(fds));
    out->iter_link = fds[0];
    out->state_link = fds[1];
    out->counters_map = fds[2];
    out->attach = answer.attach;
    return 0;
}

int cw_iter_open(int iter_link)
{
    int fd = bpf_iter_create(iter_link);
    return fd < 0 ? -errno : fd;
}

const volatile struct cw_counters *cw_counters_map(int map_fd)
{
    void *p = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_READ, MAP_SHARED, map_fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

int cw_load_here(uint32_t state_mask, int reject, struct cw_handles *out, char *log, size_t loglen, int *error,
                 int *stage)
{
    struct cw_scanner *s = cw_scanner_open(state_mask, reject, log, loglen, error, stage);
    if (!s)
        return -1;
    out->iter_link = fcntl(bpf_link__fd(s->iter), F_DUPFD_CLOEXEC, 3);
    out->state_link = fcntl(bpf_link__fd(s->state), F_DUPFD_CLOEXEC, 3);
    out->counters_map = fcntl(bpf_map__fd(s->o.counters_map), F_DUPFD_CLOEXEC, 3);
    out->attach = s->attach;
    cw_scanner_close(s);
    if (out->iter_link < 0 || out->state_link < 0 || out->counters_map < 0) {
        *error = -EMFILE;
        *stage = CW_STAGE_ATTACH;
        return -1;
    }
    return 0;
}
