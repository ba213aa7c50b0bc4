// Checkpoints and run files of a model that lives on a device (train.device = "cuda"): written from host
// copies with the host's layout and bits, read back into device tensors, and a checkpoint written from the
// device resumes on the host to the same bits as the host's own. The CPU half of test_cuda_resume (tests/gpu),
// which trains on a real GPU.
//
// Without a GPU, the Device::Cuda tensors here live in a stand-in registered through the allocation hooks the
// CUDA backend registers (core/tensor.hpp DeviceAllocator): host memory holding every byte XOR-scrambled, so
// code that read device memory as if it were host memory (instead of copying it through the hooks) would
// see garbage, not the values. With a GPU the real device is used. No kernel runs on the device tensors.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "core/tensor.hpp"
#include "io/checkpoint.hpp"
#include "io/h5file.hpp"
#include "io/run_file.hpp"
#include "kernels/backend.hpp"
#include "model/olmo2.hpp"
#include "optim/optimizer.hpp"
#include "parallel/grid.hpp"
#include "support/h5_layout.hpp"
#include "support/optim_unit.hpp"
#include "support/temp_dir.hpp"

namespace quopt {
namespace {

constexpr unsigned char kScramble = 0xA5;

void* scrambled_alloc(std::size_t bytes) {
  void* p = std::malloc(bytes);
  if (p == nullptr) throw OutOfMemory(cat("stand-in device: out of memory allocating ", bytes, " bytes"));
  return p;
}
void scrambled_free(void* p) {
  std::free(p);
}
// kind 0 host -> device and 1 device -> host (un)scramble; 2 device -> device copies as is.
void scrambled_copy(void* dst, const void* src, std::size_t bytes, int kind) {
  std::memcpy(dst, src, bytes);
  if (kind == 2) return;
  auto* d = static_cast<unsigned char*>(dst);
  for (std::size_t i = 0; i < bytes; ++i) d[i] ^= kScramble;
}
void scrambled_zero(void* dst, std::size_t bytes) {
  std::memset(dst, kScramble, bytes);  // the scrambled form of zero bytes
}

// Device::Cuda usable in this process: the real GPU when there is one, else the stand-in.
void ensure_device() {
  kernels::init_backends();
  if (!device_available(Device::Cuda))
    register_device_allocator(Device::Cuda, {scrambled_alloc, scrambled_free, scrambled_copy, scrambled_zero});
}

// Weights, optimizer state and step count from one model + optimizer into another (any devices).
void copy_state(ParameterSet& from, Optimizer& from_opt, ParameterSet& to, Optimizer& to_opt) {
  for (auto& p : to.all()) p.value.copy_from(from.get(p.name).value);
  auto src = from_opt.state(), dst = to_opt.state();
  ASSERT_EQ(src.size(), dst.size());
  for (std::size_t i = 0; i < src.size(); ++i) {
    ASSERT_EQ(src[i].name, dst[i].name);
    dst[i].tensor.copy_from(src[i].tensor);
  }
  to_opt.set_steps_taken(from_opt.steps_taken());
}

// A tiny model with AdamW state from 3 real steps on the host, and a twin on the device with the same
// values copied in (the state a GPU run holds at a checkpoint).
struct HostAndDevice {
  ModelConfig mc = testing::tiny_model();
  Olmo2 host{mc}, dev{mc, DType::F32, {}, Device::Cuda};
  std::unique_ptr<Optimizer> host_opt, dev_opt;
  RunMetrics metrics;
  HostAndDevice() {
    host.init(5);
    host_opt = make_optimizer(OptimizerConfig{}, host.params());
    testing::train_tiny(*host_opt, host, 3, 1e-3);
    dev_opt = make_optimizer(OptimizerConfig{}, dev.params());
    copy_state(host.params(), *host_opt, dev.params(), *dev_opt);
    metrics.step = {1, 2, 3};
    metrics.loss = {4.2, 4.1, 4.0};
    metrics.tokens = {128, 256, 384};
    metrics.lr = {1e-3, 1e-3, 1e-3};
    metrics.grad_norm = {1.5, 1.25, 1.0};
  }
};

// Every value of a and b (any devices) has the same bits.
void expect_same_bits(const std::string& what, const Tensor& a, const Tensor& b) {
  const Tensor ha = a.is_host() ? a : a.to(Device::Host), hb = b.is_host() ? b : b.to(Device::Host);
  ASSERT_EQ(ha.nbytes(), hb.nbytes()) << what;
  EXPECT_EQ(std::memcmp(ha.raw(), hb.raw(), ha.nbytes()), 0) << what;
}

void expect_same_model(ParameterSet& a, Optimizer& a_opt, ParameterSet& b, Optimizer& b_opt) {
  for (auto& p : a.all()) expect_same_bits(p.name, p.value, b.get(p.name).value);
  const auto sa = a_opt.state(), sb = b_opt.state();
  ASSERT_EQ(sa.size(), sb.size());
  for (std::size_t i = 0; i < sa.size(); ++i) expect_same_bits(sa[i].name, sa[i].tensor, sb[i].tensor);
  EXPECT_EQ(a_opt.steps_taken(), b_opt.steps_taken());
}

// Every dataset of the two files has the same bits, and so do their manifests (the datasets' checksums).
void expect_same_datasets(const std::string& got, const std::string& want) {
  testing::expect_same_layout(got, want);
  const H5File g = H5File::open_read(got, MPI_COMM_SELF), w = H5File::open_read(want, MPI_COMM_SELF);
  for (const auto& [path, layout] : testing::h5_datasets(w)) expect_same_bits(path, g.read(path), w.read(path));
  if (w.has_attr("/", "manifest")) {
    EXPECT_EQ(g.get_attr_string("/", "manifest"), w.get_attr_string("/", "manifest"));
  }
}

class CheckpointDevice : public ::testing::Test {
 protected:
  void SetUp() override {
    ensure_device();
    m_.emplace();
  }
  // Checkpoints of step 3 from the host and from the device copy: DIR/host/..., DIR/dev/...
  void save_both() {
    const CheckpointMeta meta{3, "config", ""};
    from_host_ = save_checkpoint(dir_.file("host"), grid_, m_->host.params(), *m_->host_opt, m_->metrics, meta, 2);
    from_dev_ = save_checkpoint(dir_.file("dev"), grid_, m_->dev.params(), *m_->dev_opt, m_->metrics, meta, 2);
  }
  testing::TempDir dir_;
  ProcessGrid grid_{MPI_COMM_WORLD, 1};
  std::optional<HostAndDevice> m_;  // made once the device is usable
  std::string from_host_, from_dev_;
};

TEST_F(CheckpointDevice, DeviceTensorsAreWrittenAsTheHostWritesThem) {
  save_both();
  EXPECT_EQ(verify_checkpoint(from_dev_), "");
  expect_same_datasets(from_dev_, from_host_);
  HostAndDevice& m = *m_;

  const RunInfo info{"config", "", 5, 1, m.mc};
  write_run_file(dir_.file("host.h5"), MPI_COMM_WORLD, info, m.host.params(), m.metrics);
  write_run_file(dir_.file("dev.h5"), MPI_COMM_WORLD, info, m.dev.params(), m.metrics);
  expect_same_datasets(dir_.file("dev.h5"), dir_.file("host.h5"));
}

TEST_F(CheckpointDevice, ResumesAcrossDevicesBitForBit) {
  save_both();
  HostAndDevice& m = *m_;

  // The host's checkpoint loaded into a fresh device model: the device tensors hold the host's bits.
  Olmo2 dev2(m.mc, DType::F32, {}, Device::Cuda);
  auto dev2_opt = make_optimizer(OptimizerConfig{}, dev2.params());
  RunMetrics metrics;
  EXPECT_EQ(load_checkpoint(from_host_, MPI_COMM_WORLD, dev2.params(), *dev2_opt, metrics).step, 3);
  expect_same_model(dev2.params(), *dev2_opt, m.host.params(), *m.host_opt);
  EXPECT_EQ(metrics.loss, m.metrics.loss);

  // The device's checkpoint resumed on the host: the same state, and training on continues exactly as the
  // host run that never left the host.
  Olmo2 host2(m.mc);
  auto host2_opt = make_optimizer(OptimizerConfig{}, host2.params());
  EXPECT_EQ(load_checkpoint(from_dev_, MPI_COMM_WORLD, host2.params(), *host2_opt, metrics).step, 3);
  expect_same_model(host2.params(), *host2_opt, m.host.params(), *m.host_opt);
  const double resumed = testing::train_tiny(*host2_opt, host2, 2, 1e-3);
  const double uninterrupted = testing::train_tiny(*m.host_opt, m.host, 2, 1e-3);
  EXPECT_EQ(resumed, uninterrupted);
  expect_same_model(host2.params(), *host2_opt, m.host.params(), *m.host_opt);
}

// The stand-in really hides device memory from host reads: its bytes are not the values.
TEST_F(CheckpointDevice, DeviceMemoryIsReachedOnlyThroughCopies) {
  if (kernels::cuda_device_count() > 0) GTEST_SKIP() << "a real GPU is in use, not the stand-in";
  Tensor h = Tensor::empty({4}, DType::F32);
  for (int i = 0; i < 4; ++i) h.data<float>()[i] = 1.0f + static_cast<float>(i);
  const Tensor d = h.to(Device::Cuda);
  EXPECT_NE(std::memcmp(d.raw(), h.raw(), h.nbytes()), 0);
  expect_same_bits("round trip", d.to(Device::Host), h);
  expect_same_bits("zeros", Tensor::zeros({4}, DType::F32, Device::Cuda), Tensor::zeros({4}, DType::F32));
}

}  // namespace
}  // namespace quopt
