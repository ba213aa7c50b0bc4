#pragma once
// Tensor: a contiguous, row-major, reference-counted n-d array that knows its dtype and device.
// Views (reshape, slice along dim 0) share storage. Kernels (kernels/ops.hpp) take Tensors and
// dispatch on device() and dtype().
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace quopt {

enum class DType : std::uint8_t { F32, F64, BF16, I32 };
enum class Device : std::uint8_t { Host, Cuda };

std::size_t dtype_size(DType dt);
const char* dtype_name(DType dt);
const char* device_name(Device dev);

template <class T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::F32;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::F64;
};
template <>
struct DTypeOf<std::int32_t> {
  static constexpr DType value = DType::I32;
};

using Shape = std::vector<std::int64_t>;
std::string shape_str(const Shape& s);

// Owning allocation on one device. Device memory is allocated through the hooks a backend registers.
class Storage {
 public:
  Storage(std::size_t bytes, Device dev);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* ptr() const { return ptr_; }
  std::size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
  Device device_ = Device::Host;
};

// Allocation hooks for non-host devices (the CUDA backend registers its own at start-up).
struct DeviceAllocator {
  void* (*alloc)(std::size_t bytes) = nullptr;
  void (*free)(void* ptr) = nullptr;
  // Copies bytes between any two devices; kinds: 0 host->dev, 1 dev->host, 2 dev->dev.
  void (*copy)(void* dst, const void* src, std::size_t bytes, int kind) = nullptr;
  // Sets bytes to zero on the device.
  void (*zero)(void* dst, std::size_t bytes) = nullptr;
};
void register_device_allocator(Device dev, DeviceAllocator a);
bool device_available(Device dev);

class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(const Shape& shape, DType dt = DType::F32, Device dev = Device::Host);
  static Tensor zeros(const Shape& shape, DType dt = DType::F32, Device dev = Device::Host);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  // Size of dimension i; negative i counts from the end.
  std::int64_t dim(int i) const;
  std::int64_t numel() const { return numel_; }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device() : Device::Host; }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel_) * dtype_size(dtype_); }
  bool is_host() const { return device() == Device::Host; }

  void* raw();
  const void* raw() const;
  template <class T>
  T* data() {
    check_type(DTypeOf<T>::value);
    return static_cast<T*>(raw());
  }
  template <class T>
  const T* data() const {
    check_type(DTypeOf<T>::value);
    return static_cast<const T*>(raw());
  }

  // Same storage, new shape with the same number of elements (one entry may be -1).
  Tensor reshape(const Shape& shape) const;
  // Rows [begin, end) of dimension 0, sharing storage.
  Tensor slice(std::int64_t begin, std::int64_t end) const;
  // Deep copy on the same device, or onto another device, or into another dtype (host only).
  Tensor clone() const;
  Tensor to(Device dev) const;
  Tensor astype(DType dt) const;
  // Copies src's elements into this tensor (same numel and dtype; any devices).
  void copy_from(const Tensor& src);
  void zero_();
  // Host only: element i as double, for tests and diagnostics.
  double item(std::int64_t i) const;
  std::string describe() const;  // "f32[2, 3]@host"

 private:
  void check_type(DType want) const;
  std::shared_ptr<Storage> storage_;
  std::size_t offset_bytes_ = 0;
  Shape shape_;
  std::int64_t numel_ = 0;
  DType dtype_ = DType::F32;
};

// A tensor with a name (a dataset path in run files and checkpoints).
struct NamedTensor {
  std::string name;
  Tensor tensor;
};

}  // namespace quopt
