// stop_request.h: the signal handlers behind StopSignal().
#include "train/stop_request.h"

#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

namespace strun::train {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;
volatile std::sig_atomic_t g_first_at = 0;  // CLOCK_MONOTONIC seconds of the first signal

long MonotonicSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // async-signal-safe
  return long(ts.tv_sec);
}

void OnStopSignal(int sig) {
  if (g_stop_signal != 0) {
    // SIGUSR1 is only a warning and may come again; SIGTERM/SIGINT again means "now" -- except a
    // SIGTERM echo within 2 s: Slurm signals every process of a step and strun forwards the
    // signal too, so one time limit reaches a worker twice within moments.
    const bool echo =
        sig == SIGTERM && g_stop_signal == SIGTERM && MonotonicSeconds() - g_first_at < 2;
    if ((sig == SIGTERM || sig == SIGINT) && !echo) _exit(128 + sig);
    return;
  }
  g_first_at = std::sig_atomic_t(MonotonicSeconds());
  g_stop_signal = sig;
}

}  // namespace

Status InstallStopSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  // SA_RESTART: a signal must not make a blocking read or collective fail with EINTR.
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  // One handler at a time per thread: the check-then-set above is not atomic otherwise.
  for (int s : {SIGUSR1, SIGTERM, SIGINT}) sigaddset(&sa.sa_mask, s);
  for (int s : {SIGUSR1, SIGTERM, SIGINT}) {
    if (sigaction(s, &sa, nullptr) != 0) {
      return MakeError("cannot install the handler of " + StopSignalName(s) + ": " +
                       std::strerror(errno));
    }
  }
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  if (sigaction(SIGPIPE, &ignore, nullptr) != 0) {
    return MakeError(std::string("cannot ignore SIGPIPE: ") + std::strerror(errno));
  }
  return {};
}

int StopSignal() { return g_stop_signal; }

std::string StopSignalName(int signal_number) {
  switch (signal_number) {
    case SIGUSR1:
      return "SIGUSR1";
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
  }
  return "signal " + std::to_string(signal_number);
}

}  // namespace strun::train
