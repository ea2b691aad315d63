#ifndef CLOSEWAITD_CCLOCK_H
#define CLOSEWAITD_CCLOCK_H

/* The one clock every Swift target reads time through: seconds of CLOCK_MONOTONIC (ticks,
   deadlines, systemd's MONOTONIC_USEC) or of CLOCK_REALTIME (the state file's "updated at").
   This header includes nothing, so importing it never changes who owns a system header. */
double cw_monotonic_seconds(void);
double cw_realtime_seconds(void);

#endif
