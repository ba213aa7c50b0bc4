#include "model/params.hpp"

#include "core/error.hpp"

namespace quopt {

const char* role_name(ParamRole r) {
  switch (r) {
    case ParamRole::Hidden:
      return "hidden";
    case ParamRole::Embedding:
      return "embedding";
    case ParamRole::Head:
      return "head";
    case ParamRole::Gain:
      return "gain";
  }
  return "?";
}

std::string Parameter::layer() const {
  return name.substr(0, name.find('/'));
}
std::string Parameter::param() const {
  return name.substr(name.find('/') + 1);
}

Parameter& ParameterSet::add(const std::string& name, ParamRole role, const Shape& shape, DType dt, Device dev) {
  QUOPT_CHECK(!contains(name), "duplicate parameter ", name);
  QUOPT_CHECK(name.find('/') != std::string::npos, "parameter name must be <layer>/<param>: ", name);
  Parameter p;
  p.name = name;
  p.role = role;
  p.value = Tensor::zeros(shape, dt, dev);
  p.grad = Tensor::zeros(shape, dt, dev);
  params_.push_back(std::move(p));
  return params_.back();
}

Parameter& ParameterSet::get(const std::string& name) {
  for (auto& p : params_)
    if (p.name == name) return p;
  fail("no parameter named ", name);
}
const Parameter& ParameterSet::get(const std::string& name) const {
  for (const auto& p : params_)
    if (p.name == name) return p;
  fail("no parameter named ", name);
}
bool ParameterSet::contains(const std::string& name) const {
  for (const auto& p : params_)
    if (p.name == name) return true;
  return false;
}
std::int64_t ParameterSet::numel() const {
  std::int64_t n = 0;
  for (const auto& p : params_) n += p.value.numel();
  return n;
}
void ParameterSet::zero_grads() {
  for (auto& p : params_) p.grad.zero_();
}

}  // namespace quopt
