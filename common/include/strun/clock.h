// strun/clock.h: the two clocks strun's components read, in seconds.
//
// Inline and allocation-free: they are also read in forked children and in the cgroup guardian
// (process.h), where nothing may allocate.
#pragma once

#include <time.h>

namespace strun {

// CLOCK_REALTIME: timestamps that leave the process (error files, events, logs).
inline double WallSeconds() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// CLOCK_MONOTONIC: deadlines and intervals, which a change of the wall clock must not move.
inline double MonoSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

}  // namespace strun
