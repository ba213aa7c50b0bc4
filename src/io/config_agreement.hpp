#pragma once
// All ranks of a job must run the same command with the same resolved config: one rank with another
// optimizer, model width or output directory would otherwise hang in a collective, crash inside MPI or
// train inconsistent replicas. At start-up every rank hashes its command line and its resolved config;
// when the hashes differ, every rank stops with an error naming the ranks that differ and the first
// differing config key (or command-line argument).
#include <mpi.h>

#include <string>
#include <vector>

namespace quopt {

// "model.d_model = 64 vs 128" for the first key whose line differs between two resolved configs as
// Config::to_toml() writes them ("[section]" headers, then "key = value" lines); "" when they are equal.
std::string first_config_difference(const std::string& toml_a, const std::string& toml_b);

// Collective over comm: returns when every rank passed the same command-line arguments and resolved
// config; otherwise throws the same quopt::Error on every rank.
void agree_on_config(MPI_Comm comm, const std::vector<std::string>& args, const std::string& resolved_toml);

}  // namespace quopt
