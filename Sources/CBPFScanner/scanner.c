#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    struct cw_counters *counters;
};

struct cw_scanner {
    struct cw_objects o;
    struct bpf_link *iter;
    struct bpf_link *state;
    int attach;
    long fail_after; /* -1: never */
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
        o->counters = &skel->bss->counters;                                                        \
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

struct cw_scanner *cw_scanner_open(uint32_t state_mask, int reject, char *log, size_t loglen,
                                   int *error, int *stage)
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
        s->fail_after = -1;
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

int cw_scanner_attach_kind(const struct cw_scanner *s) { return s->attach; }

const volatile struct cw_counters *cw_scanner_counters(const struct cw_scanner *s)
{
    return s->o.counters;
}

void cw_scanner_fail_after(struct cw_scanner *s, long passes) { s->fail_after = passes; }

long cw_scanner_pass(struct cw_scanner *s, uint8_t **buffer, size_t *capacity, long *again)
{
    *again = 0;
    if (s->fail_after == 0 && s->iter) {
        bpf_link__destroy(s->iter);
        s->iter = NULL;
    }
    if (s->fail_after > 0)
        s->fail_after--;
    if (!s->iter)
        return -ENOLINK;
    int fd = bpf_iter_create(bpf_link__fd(s->iter));
    if (fd < 0)
        return -errno;
    size_t used = 0;
    for (;;) {
        if (*capacity - used < 65536) {
            size_t grown = *capacity ? *capacity * 2 : 1 << 20;
            uint8_t *next = realloc(*buffer, grown);
            if (!next) {
                close(fd);
                return -ENOMEM;
            }
            *buffer = next;
            *capacity = grown;
        }
        ssize_t n = read(fd, *buffer + used, *capacity - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            /* A million objects visited with nothing written: the pass goes on from there. */
            (*again)++;
            continue;
        }
        if (n < 0) {
            int err = errno;
            close(fd);
            return -err;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    close(fd);
    return (long)used;
}

void cw_scanner_close(struct cw_scanner *s)
{
    if (!s)
        return;
    unload(s);
    free(s);
}
