#pragma once
// SIGTERM and SIGUSR1: what Slurm sends before a time limit (--signal), scancel and preemption send.
// main() installs the handlers first, before MPI and Kokkos start, so a signal that arrives at any
// moment is caught. quopt train checks the flag after every step (and before the first): it writes a
// checkpoint and exits 75 (kExitInterrupted). Every other command restores the default action at once
// (release_stop_handlers), re-raising a signal that arrived in the meantime, so they end as usual.
#include <csignal>

namespace quopt::app {

// Installs the handlers; returns the flag they set (the signal number, 0 when none arrived).
const volatile std::sig_atomic_t* install_stop_handlers();
// Restores the default action of both signals and re-raises one that arrived since install.
void release_stop_handlers();

}  // namespace quopt::app
