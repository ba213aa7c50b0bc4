#include "quant/scheme.hpp"

#include <cctype>
#include <cstdint>

#include "core/error.hpp"
#include "kernels/quant_ops.hpp"

namespace quopt {

namespace {

constexpr const char* kAccepted =
    "accepted forms: <method>-w<bits>[g<group>][a<bits>] with method rtn or gptq, bits 2..8 and group a "
    "positive column count, e.g. rtn-w4a4, rtn-w4, gptq-w4, gptq-w4a4, rtn-w4g128a8";

[[noreturn]] void bad(std::string_view name, const std::string& what) {
  fail("quantization scheme '", name, "': ", what, "; ", kAccepted);
}

// Reads the decimal number at s[pos...]; advances pos. No sign, no leading zeros.
std::int64_t read_number(std::string_view name, std::string_view s, std::size_t& pos, const char* what) {
  const std::size_t start = pos;
  std::int64_t v = 0;
  while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos])) != 0) {
    if (v > 100000000) bad(name, cat(what, " '", s.substr(start), "' is too large"));
    v = v * 10 + (s[pos] - '0');
    ++pos;
  }
  if (pos == start) {
    bad(name, cat("expected a number after '", s.substr(0, start), "' (", what, ") but found '",
                  (start < s.size() ? s.substr(start) : std::string_view("end of name")), "'"));
  }
  if (s[start] == '0') {
    if (pos - start == 1) bad(name, cat(what, " must be positive, not 0"));
    bad(name, cat(what, " '", s.substr(start, pos - start), "' has a leading zero"));
  }
  return v;
}

int check_bits(std::string_view name, std::int64_t b, const char* what) {
  if (b < kernels::kRtnMinBits || b > kernels::kRtnMaxBits) {
    bad(name, cat(what, " ", b, " is out of range (", kernels::kRtnMinBits, "..", kernels::kRtnMaxBits, ")"));
  }
  return static_cast<int>(b);
}

}  // namespace

QuantScheme parse_quant_scheme(std::string_view name) {
  QuantScheme s;
  const std::size_t dash = name.find('-');
  if (dash == std::string_view::npos) bad(name, "missing '-' between the method and the bit widths");
  const std::string_view method = name.substr(0, dash);
  if (method == "rtn") {
    s.method = QuantMethod::Rtn;
  } else if (method == "gptq") {
    s.method = QuantMethod::Gptq;
  } else {
    bad(name, cat("unknown method '", method, "' (use rtn or gptq, lower case)"));
  }
  const std::string_view rest = name.substr(dash + 1);
  std::size_t pos = 0;
  if (rest.empty() || rest[0] != 'w') {
    bad(name, cat("expected 'w<bits>' after '", method, "-' but found '", rest, "'"));
  }
  ++pos;
  s.weight_bits = check_bits(name, read_number(name, rest, pos, "weight bits"), "weight bits");
  if (pos < rest.size() && rest[pos] == 'g') {
    ++pos;
    s.group_size = read_number(name, rest, pos, "group size");
  }
  if (pos < rest.size() && rest[pos] == 'a') {
    ++pos;
    s.act_bits = check_bits(name, read_number(name, rest, pos, "activation bits"), "activation bits");
  }
  if (pos != rest.size()) {
    bad(name, cat("unexpected '", rest.substr(pos), "' after '", name.substr(0, dash + 1 + pos), "'"));
  }
  s.name = format_quant_scheme(s);
  return s;
}

std::string format_quant_scheme(const QuantScheme& s) {
  std::string n = cat(quant_method_name(s.method), "-w", s.weight_bits);
  if (s.group_size > 0) n += cat("g", s.group_size);
  if (s.act_bits > 0) n += cat("a", s.act_bits);
  return n;
}

const char* quant_method_name(QuantMethod m) {
  return m == QuantMethod::Gptq ? "gptq" : "rtn";
}

const char* quant_granularity(const QuantScheme& s) {
  return s.group_size > 0 ? "group" : "row";
}

}  // namespace quopt
