// quopt: the command-line entry point. Parses the command line, then hands over to one subcommand.
// Nothing below app/ reads the command line or the environment.
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "app/commands.hpp"
#include "app/idle_threads.hpp"
#include "app/signals.hpp"
#include "core/edit_distance.hpp"
#include "core/error.hpp"
#include "core/runtime.hpp"
#include "io/h5file.hpp"
#include "kernels/backend.hpp"
#include "parallel/collective_error.hpp"
#include "quopt/version.hpp"

namespace {

void add_common(CLI::App* sub, quopt::app::CommonArgs& a, bool with_out) {
  sub->add_option("config", a.config, "TOML config file (a run, or any file that composes one)")->required();
  sub->add_option("--set", a.sets, "override a config key: --set section.key=value (repeatable)")
      ->type_name("KEY=VALUE")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  if (with_out) sub->add_option("--out", a.out, "output directory (overrides output.dir)");
}

// "unknown command 'trian'; did you mean 'train'?" when the first argument is a misspelt subcommand
// (CLI11 would only say that a subcommand is required); "" otherwise.
std::string unknown_command(const CLI::App& app, int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return {};
  std::vector<std::string> names;
  for (const auto* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    names.push_back(sub->get_name());
  const std::string word = argv[1];
  for (const auto& n : names)
    if (n == word) return {};
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  const auto near = quopt::closest_word(word, names);
  return quopt::cat("unknown command '", word, "'",
                    near ? "; did you mean '" + *near + "'?" : std::string("."), " The commands are: ", list,
                    " (quopt --help describes them)");
}

// Ends the process with `code`. When HDF5 was left half-closed by a failed write (a full disk), its own
// shutdown inside MPI_Finalize would crash (io/h5file.hpp), so the process ends without it; the error
// has been reported and every file written under a temporary name was removed.
[[noreturn]] void finish(int code) {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(code);
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything else: may re-execute quopt with passive idle threads (app/idle_threads.hpp).
  quopt::app::ensure_passive_idle_threads(argv);
  // Then, before MPI and Kokkos start (which takes a while): a SIGTERM/SIGUSR1 from now on
  // is caught, never the default "terminate without a checkpoint" (app/signals.hpp).
  quopt::app::install_stop_handlers();
  quopt::Runtime runtime(argc, argv);
  quopt::kernels::init_backends();  // registers the CUDA allocator when a GPU is visible
  CLI::App app{"quopt: train OLMo2 models with six optimizers, quantize them and analyse the damage"};
  app.set_version_flag("--version", std::string(quopt::kVersion) + " (" + quopt::kGitRevision + ")");
  app.require_subcommand(1);

  quopt::app::CommonArgs tok, train, info, bench;
  quopt::app::BenchArgs bench_args;
  auto* c_tok = app.add_subcommand("tokenize", "train a SentencePiece tokenizer and write token shards");
  add_common(c_tok, tok, false);
  auto* c_train = app.add_subcommand("train", "train a model (writes DIR/run.h5 and DIR/metrics.jsonl)");
  add_common(c_train, train, true);
  std::string resume = "never";
  std::vector<std::string> allow_change;
  c_train->add_option(
      "--resume", resume,
      "auto: continue from the newest usable checkpoint in the output directory (start fresh if there is "
      "none); PATH: from that checkpoint; never (default)");
  c_train
      ->add_option("--allow-config-change", allow_change,
                   "on resume, accept that config KEY differs from the checkpoint's (repeatable; recorded in "
                   "run.h5; keys that may always change: docs/reliability.md)")
      ->type_name("KEY")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  auto* c_info = app.add_subcommand("info", "print a model's parameter counts and FLOPs per token");
  add_common(c_info, info, false);
  auto* c_bench =
      app.add_subcommand("bench", "measure training tokens/s and GEMM efficiency on synthetic data");
  add_common(c_bench, bench, false);
  c_bench->add_option("--steps", bench_args.steps, "timed steps")->check(CLI::PositiveNumber);
  c_bench->add_option("--warmup", bench_args.warmup, "untimed steps first")->check(CLI::NonNegativeNumber);
  c_bench->add_option(
      "--optimizers", bench_args.optimizers,
      "compare the step time of these optimizers (or: all) as ratios to AdamW; under mpirun the "
      "optimizers shard their work over the ranks");
  c_bench->add_flag("--gemm-shapes", bench_args.gemm_shapes,
                    "also print every GEMM shape of the step with its bare cblas_sgemm rate, one line each: "
                    "gemm M N K BATCH TRANS_A TRANS_B CALLS GFLOP/s (row-major)");

  quopt::app::CommonArgs ptq, eval, analyze;
  std::string run_dir, eval_scheme;
  std::vector<std::string> schemes;
  auto* c_ptq = app.add_subcommand("ptq", "quantize a trained run (PTQ), evaluate, record /quant in run.h5");
  add_common(c_ptq, ptq, false);
  c_ptq->add_option("--run", run_dir, "run directory holding run.h5")->required();
  c_ptq->add_option("--scheme", schemes, "scheme, e.g. rtn-w4a4 (repeatable; default: quant.schemes)");
  quopt::app::WeightsChoice at;
  const char* step_help =
      "take the weights of this training step (a snapshot kept with snapshot.enabled = true; default: "
      "the final weights)";
  c_ptq->add_option("--step", at.step, step_help)->check(CLI::NonNegativeNumber);
  auto* c_eval = app.add_subcommand("eval", "validation loss, perplexity and zero-shot accuracy of a run");
  add_common(c_eval, eval, false);
  c_eval->add_option("--run", run_dir, "run directory holding run.h5")->required();
  c_eval->add_option("--quant", eval_scheme, "evaluate the model quantized with this scheme");
  std::string logits_file;
  c_eval
      ->add_option("--logits", logits_file,
                   "also write the logits and per-token losses of one validation batch to FILE (safetensors)")
      ->type_name("FILE");
  c_eval->add_option("--step", at.step, step_help)->check(CLI::NonNegativeNumber);
  auto* c_analyze =
      app.add_subcommand("analyze", "outlier metrics and the ABC decomposition of a quantized run");
  add_common(c_analyze, analyze, false);
  c_analyze->add_option("--run", run_dir, "run directory holding run.h5 (after quopt ptq)")->required();
  c_analyze->add_option("--quant", schemes, "scheme(s) recorded by quopt ptq (default: quant.schemes)");

  quopt::app::CommonArgs exp;
  std::string hf_dir, export_scheme;
  auto* c_export = app.add_subcommand(
      "export",
      "write a run's model as a Hugging Face Olmo2 directory (config.json, model.safetensors, tokenizer)");
  add_common(c_export, exp, false);
  c_export->add_option("--run", run_dir, "run directory holding run.h5")->required();
  c_export->add_option("--to", hf_dir, "output directory for transformers / lm-eval")->required();
  c_export->add_option("--quant", export_scheme, "export the fake-quantized weights of this PTQ scheme");
  std::string import_out;
  auto* c_import =
      app.add_subcommand("import", "read a Hugging Face Olmo2 checkpoint into a quopt run directory");
  c_import->add_option("hf_dir", hf_dir, "Hugging Face model directory (config.json, *.safetensors)")
      ->required();
  c_import->add_option("--out", import_out, "run directory to create (run.h5, config.toml, tokenizer)")
      ->required();

  auto* c_study = app.add_subcommand("study", "plan or run a study (sizes x optimizers x learning rates)");
  c_study->require_subcommand(1);
  std::string study_file, stage = "all";
  bool count_only = false;
  std::int64_t index = -1;
  auto* c_plan =
      c_study->add_subcommand("plan", "print the runs a study implies: index, run directory, stages");
  c_plan->add_option("study", study_file, "STUDY.toml")->required();
  c_plan->add_flag("--count", count_only, "print only the number of runs");
  auto* c_run =
      c_study->add_subcommand("run", "run stages of one run (--index) or of all runs, skipping done ones");
  c_run->add_option("study", study_file, "STUDY.toml")->required();
  c_run->add_option("--index", index, "run index from `quopt study plan` (default: every run)");
  c_run->add_option("--stage", stage, "train, ptq, analyze or all (default)");

  if (const std::string unknown = unknown_command(app, argc, argv); !unknown.empty()) {
    if (runtime.rank() == 0) std::cerr << "quopt: error: " << unknown << std::endl;
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return runtime.rank() == 0 ? app.exit(e) : (e.get_exit_code() == 0 ? 0 : 2);
  }
  const std::vector<std::string> args(argv + 1, argv + argc);
  for (auto* a : {&tok, &train, &info, &bench, &ptq, &eval, &analyze, &exp}) a->args = args;
  train.out_given = c_train->count("--out") > 0;
  // Only training turns a signal into a checkpoint; every other command ends on it as usual.
  if (!*c_train && !*c_run) quopt::app::release_stop_handlers();

  int code = 0;
  try {
    if (*c_tok) code = quopt::app::cmd_tokenize(tok);
    if (*c_train) code = quopt::app::cmd_train(train, resume, allow_change);
    if (*c_info) code = quopt::app::cmd_info(info);
    if (*c_bench) code = quopt::app::cmd_bench(bench, bench_args);
    if (*c_ptq) code = quopt::app::cmd_ptq(ptq, run_dir, schemes, at);
    if (*c_eval) code = quopt::app::cmd_eval(eval, run_dir, eval_scheme, logits_file, at);
    if (*c_export) code = quopt::app::cmd_export(exp, run_dir, hf_dir, export_scheme);
    if (*c_import) code = quopt::app::cmd_import(hf_dir, import_out);
    if (*c_analyze) code = quopt::app::cmd_analyze(analyze, run_dir, schemes);
    if (*c_plan) code = quopt::app::cmd_study_plan(study_file, count_only);
    if (*c_run) code = quopt::app::cmd_study_run(study_file, index, stage);
  } catch (const quopt::CollectiveError& e) {  // every rank has it: report once, end together
    if (runtime.rank() == 0) std::cerr << "quopt: error: " << e.what() << std::endl;
    code = 2;
  } catch (const quopt::Error& e) {
    if (runtime.size() > 1) {
      std::cerr << "quopt: error (rank " << runtime.rank() << "): " << e.what() << std::endl;
      MPI_Abort(MPI_COMM_WORLD, 2);  // one failing rank stops the whole job, never a hang
    }
    std::cerr << "quopt: error: " << e.what() << std::endl;
    code = 2;
  } catch (const std::exception& e) {
    std::cerr << "quopt: internal error (rank " << runtime.rank() << "): " << e.what() << std::endl;
    if (runtime.size() > 1) MPI_Abort(MPI_COMM_WORLD, 3);
    code = 3;
  }
  if (quopt::H5File::library_damaged()) finish(code);
  return code;
}
