import CClock

/// CLOCK_MONOTONIC in seconds: the daemon's clock for ticks, ages, rates and deadlines.
public func monotonicNow() -> Double { cw_monotonic_seconds() }

/// CLOCK_REALTIME in seconds since the epoch: only for what people read as a date (the state
/// file's "updated at"); never for intervals.
public func wallClockNow() -> Double { cw_realtime_seconds() }
