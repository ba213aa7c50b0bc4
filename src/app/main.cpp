// quopt: the command-line entry point (placeholder until the subcommands land in this commit series).
#include <iostream>

#include "core/runtime.hpp"

int main(int argc, char** argv) {
  quopt::Runtime runtime(argc, argv);
  std::cout << "quopt\n";
  return 0;
}
