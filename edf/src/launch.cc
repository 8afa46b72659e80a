#include "strun/edf/launch.h"

#include <cstdlib>

#include "strun/edf/edf.h"
#include "strun/edf/validate.h"

namespace strun::edf {

bool InsideEdfContainer() {
  const char* v = std::getenv(kContainerEnvVar);
  return v != nullptr && *v != '\0';
}

Result<std::unique_ptr<Container>> PrepareEnvironment(std::string_view environment,
                                                      std::vector<std::string>* warnings) {
  if (InsideEdfContainer()) return std::unique_ptr<Container>();
  auto edf = LoadEnvironment(environment, LoadOptionsFromProcess());
  if (!edf.ok()) return edf.error();
  if (warnings) warnings->insert(warnings->end(), edf->warnings.begin(), edf->warnings.end());
  RuntimeOptions opts;
  opts.user = UserIdentity::OfProcess();
  if (auto st = CheckLaunchable(*edf, opts.user); !st.ok()) return st.error();
  auto c = Container::Create(*edf, opts);
  if (!c.ok()) return c.error();
  return std::move(c.value());
}

}  // namespace strun::edf
