#pragma once
#include <csignal>

namespace quopt::app {

// Installs handlers for SIGTERM and SIGUSR1 (what Slurm sends before a time limit with --signal)
// that set the returned flag; the trainer checkpoints at the end of the step and stops.
const volatile std::sig_atomic_t* install_stop_handlers();

}  // namespace quopt::app
