#pragma once
// The files of a run in its directory DIR (metrics.jsonl, run.h5, checkpoints/step-*.h5), and what a
// new run does with those of an earlier one: quopt never overwrites or truncates them before it has
// something to replace them with. A fresh start in a directory that holds them is refused
// (quopt train without --resume), or, under --resume auto when no usable checkpoint is left, they are
// moved aside into DIR/previous-N/ and the run starts over. Either way the log says which.
#include <string>
#include <vector>

namespace quopt {

// The earlier run's files in dir, relative to it ("metrics.jsonl", "run.h5", "checkpoints/step-...h5");
// empty when there are none. Temporaries of interrupted writes (*.tmp) do not count.
std::vector<std::string> previous_run_files(const std::string& dir);

// Moves those files into dir/previous-N (the first N >= 1 not in use) and returns that directory.
std::string move_previous_run(const std::string& dir);

// "metrics.jsonl, run.h5 and 3 checkpoints" for messages.
std::string describe_run_files(const std::vector<std::string>& files);

}  // namespace quopt
