// tests/cluster/wait_for.h: polling a condition until it holds or a deadline passes.
#pragma once

#include <chrono>
#include <thread>

namespace strun::testing {

// Checks `done` every `poll` until it holds or `timeout` passes; whether it held (checked once
// more at the deadline).
template <typename F>
bool WaitFor(F done, std::chrono::duration<double> timeout,
             std::chrono::milliseconds poll = std::chrono::milliseconds(100)) {
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::nanoseconds>(timeout);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(poll);
  }
  return done();
}

}  // namespace strun::testing
