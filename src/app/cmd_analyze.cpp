#include "app/commands.hpp"
#include "core/error.hpp"

namespace quopt::app {

int cmd_analyze(const CommonArgs&, const std::string&, const std::vector<std::string>&) {
  fail("quopt analyze: the analysis library is being integrated in this change series");
}

}  // namespace quopt::app
