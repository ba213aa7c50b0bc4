#pragma once
// Post-training quantization schemes by name: "<method>-w<bits>[g<group>][a<bits>]", e.g. rtn-w4a4
// (the study's W4A4 RTN), rtn-w4 (weights only), gptq-w4, gptq-w4a4, rtn-w4g128a8 (weights per group
// of 128 input columns, 8-bit activations). The name is the /quant/<scheme> group of the run file.
#include <cstdint>
#include <string>
#include <string_view>

namespace quopt {

enum class QuantMethod { Rtn, Gptq };

struct QuantScheme {
  QuantMethod method = QuantMethod::Rtn;
  int weight_bits = 4;          // 2..8, symmetric AbsMax grid
  int act_bits = 0;             // 0: full-precision activations; else 2..8, per token
  std::int64_t group_size = 0;  // 0: one weight scale per output row; g: one per g input columns
  std::string name;             // canonical name, e.g. "rtn-w4a4"
};

// Parses a scheme name (lower case, no leading zeros in numbers). Throws quopt::Error naming the bad
// part and listing the accepted forms.
QuantScheme parse_quant_scheme(std::string_view name);

// The canonical name of s ("rtn-w4g128a8"); parse_quant_scheme(format_quant_scheme(s)) == s.
std::string format_quant_scheme(const QuantScheme& s);

// "rtn" | "gptq" (the run file's method attribute) and "row" | "group" (its granularity attribute).
const char* quant_method_name(QuantMethod m);
const char* quant_granularity(const QuantScheme& s);

}  // namespace quopt
