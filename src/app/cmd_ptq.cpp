#include "app/commands.hpp"
#include "core/error.hpp"

namespace quopt::app {

int cmd_ptq(const CommonArgs&, const std::string&, const std::vector<std::string>&) {
  fail("quopt ptq is being implemented in this change series");
}

int cmd_analyze(const CommonArgs&, const std::string&, const std::vector<std::string>&) {
  fail("quopt analyze is being implemented in this change series");
}

}  // namespace quopt::app
