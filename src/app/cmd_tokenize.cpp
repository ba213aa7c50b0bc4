#include <mpi.h>

#include "app/commands.hpp"
#include "app/config_loader.hpp"
#include "core/log.hpp"
#include "io/tokenize.hpp"

namespace quopt::app {

int cmd_tokenize(const CommonArgs& a) {
  const LoadedConfig lc = load_config(a);
  const std::int64_t vocab =
      lc.run.tokenize.vocab_size > 0 ? lc.run.tokenize.vocab_size : lc.run.model.vocab_size;
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) {  // one process does the (serial) tokenizer training; the others wait
    const TokenizeStats s = tokenize_corpus(lc.run.tokenize, vocab);
    log_info(describe(s));
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return 0;
}

}  // namespace quopt::app
