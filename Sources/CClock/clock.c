#include <time.h>
#include "CClock.h"

static double seconds(clockid_t clock) {
    struct timespec now;
    clock_gettime(clock, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

double cw_monotonic_seconds(void) { return seconds(CLOCK_MONOTONIC); }
double cw_realtime_seconds(void) { return seconds(CLOCK_REALTIME); }
