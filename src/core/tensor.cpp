#include "core/tensor.hpp"

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "core/error.hpp"

namespace quopt {

namespace {
DeviceAllocator g_allocators[2];
constexpr std::size_t kHostAlignment = 64;  // cache line; also AVX-512 friendly

std::int64_t count(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) {
    QUOPT_CHECK(d >= 0, "negative dimension in shape ", shape_str(s));
    n *= d;
  }
  return n;
}
}  // namespace

std::size_t dtype_size(DType dt) {
  switch (dt) {
    case DType::F32:
      return 4;
    case DType::F64:
      return 8;
    case DType::BF16:
      return 2;
    case DType::I32:
      return 4;
  }
  return 0;
}

const char* dtype_name(DType dt) {
  switch (dt) {
    case DType::F32:
      return "f32";
    case DType::F64:
      return "f64";
    case DType::BF16:
      return "bf16";
    case DType::I32:
      return "i32";
  }
  return "?";
}

const char* device_name(Device dev) {
  return dev == Device::Host ? "host" : "cuda";
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (std::size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

void register_device_allocator(Device dev, DeviceAllocator a) {
  g_allocators[static_cast<int>(dev)] = a;
}
bool device_available(Device dev) {
  return dev == Device::Host || g_allocators[static_cast<int>(dev)].alloc != nullptr;
}

Storage::Storage(std::size_t bytes, Device dev) : bytes_(bytes), device_(dev) {
  const std::size_t n = bytes == 0 ? kHostAlignment : bytes;
  if (dev == Device::Host) {
    ptr_ = std::aligned_alloc(kHostAlignment, (n + kHostAlignment - 1) / kHostAlignment * kHostAlignment);
    if (!ptr_) throw OutOfMemory(cat("out of host memory allocating ", bytes, " bytes"));
  } else {
    const auto& a = g_allocators[static_cast<int>(dev)];
    QUOPT_CHECK(a.alloc, "device ", device_name(dev), " is not available in this build or on this machine");
    ptr_ = a.alloc(n);
  }
}

Storage::~Storage() {
  if (device_ == Device::Host) {
    std::free(ptr_);
  } else if (ptr_) {
    g_allocators[static_cast<int>(device_)].free(ptr_);
  }
}

Tensor Tensor::empty(const Shape& shape, DType dt, Device dev) {
  Tensor t;
  t.shape_ = shape;
  t.numel_ = count(shape);
  t.dtype_ = dt;
  t.storage_ = std::make_shared<Storage>(t.nbytes(), dev);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dt, Device dev) {
  Tensor t = empty(shape, dt, dev);
  t.zero_();
  return t;
}

std::int64_t Tensor::dim(int i) const {
  const int n = ndim();
  const int j = i < 0 ? i + n : i;
  QUOPT_CHECK(j >= 0 && j < n, "dimension ", i, " out of range for tensor ", describe());
  return shape_[static_cast<std::size_t>(j)];
}

void* Tensor::raw() {
  QUOPT_CHECK(storage_, "use of an undefined tensor");
  return static_cast<char*>(storage_->ptr()) + offset_bytes_;
}
const void* Tensor::raw() const {
  QUOPT_CHECK(storage_, "use of an undefined tensor");
  return static_cast<const char*>(storage_->ptr()) + offset_bytes_;
}

void Tensor::check_type(DType want) const {
  QUOPT_CHECK(dtype_ == want, "tensor ", describe(), " accessed as ", dtype_name(want));
}

Tensor Tensor::reshape(const Shape& shape) const {
  Shape s = shape;
  std::int64_t known = 1;
  int infer = -1;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      QUOPT_CHECK(infer < 0, "reshape to ", shape_str(shape), ": more than one -1");
      infer = static_cast<int>(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    QUOPT_CHECK(known > 0 && numel_ % known == 0, "cannot reshape ", describe(), " to ", shape_str(shape));
    s[static_cast<std::size_t>(infer)] = numel_ / known;
  }
  QUOPT_CHECK(count(s) == numel_, "cannot reshape ", describe(), " to ", shape_str(shape));
  Tensor t = *this;
  t.shape_ = s;
  return t;
}

Tensor Tensor::slice(std::int64_t begin, std::int64_t end) const {
  QUOPT_CHECK(ndim() >= 1 && begin >= 0 && begin <= end && end <= shape_[0], "slice [", begin, ", ", end,
              ") out of range for ", describe());
  Tensor t = *this;
  const std::int64_t row = shape_[0] == 0 ? 0 : numel_ / shape_[0];
  t.shape_[0] = end - begin;
  t.numel_ = row * (end - begin);
  t.offset_bytes_ += static_cast<std::size_t>(begin * row) * dtype_size(dtype_);
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  QUOPT_CHECK(src.numel_ == numel_ && src.dtype_ == dtype_, "copy_from: ", src.describe(), " into ",
              describe());
  if (numel_ == 0) return;
  const Device d = device(), s = src.device();
  if (d == Device::Host && s == Device::Host) {
    std::memcpy(raw(), src.raw(), nbytes());
    return;
  }
  const Device other = d == Device::Host ? s : d;
  const auto& a = g_allocators[static_cast<int>(other)];
  QUOPT_CHECK(a.copy, "no copy routine for device ", device_name(other));
  const int kind = (s == Device::Host) ? 0 : (d == Device::Host ? 1 : 2);
  a.copy(raw(), src.raw(), nbytes(), kind);
}

Tensor Tensor::clone() const {
  return to(device());
}

Tensor Tensor::to(Device dev) const {
  Tensor t = empty(shape_, dtype_, dev);
  t.copy_from(*this);
  return t;
}

Tensor Tensor::astype(DType dt) const {
  QUOPT_CHECK(is_host(), "astype is host only; got ", describe());
  if (dt == dtype_) return clone();
  Tensor t = empty(shape_, dt);
  for (std::int64_t i = 0; i < numel_; ++i) {
    const double v = item(i);
    switch (dt) {
      case DType::F32:
        t.data<float>()[i] = static_cast<float>(v);
        break;
      case DType::F64:
        t.data<double>()[i] = v;
        break;
      case DType::I32:
        t.data<std::int32_t>()[i] = static_cast<std::int32_t>(v);
        break;
      case DType::BF16:
        fail("astype to bf16 is not supported on the host");
    }
  }
  return t;
}

void Tensor::zero_() {
  if (numel_ == 0) return;
  if (is_host()) {
    std::memset(raw(), 0, nbytes());
  } else {
    const auto& a = g_allocators[static_cast<int>(device())];
    QUOPT_CHECK(a.zero, "no zero routine for device ", device_name(device()));
    a.zero(raw(), nbytes());
  }
}

double Tensor::item(std::int64_t i) const {
  QUOPT_CHECK(is_host() && i >= 0 && i < numel_, "item(", i, ") on ", describe());
  switch (dtype_) {
    case DType::F32:
      return static_cast<const float*>(raw())[i];
    case DType::F64:
      return static_cast<const double*>(raw())[i];
    case DType::I32:
      return static_cast<const std::int32_t*>(raw())[i];
    case DType::BF16: {
      std::uint32_t bits = static_cast<std::uint32_t>(static_cast<const std::uint16_t*>(raw())[i]) << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
  }
  return 0;
}

std::string Tensor::describe() const {
  return cat(dtype_name(dtype_), shape_str(shape_), "@", device_name(device()));
}

}  // namespace quopt
