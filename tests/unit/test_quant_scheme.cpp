// Quantization scheme names: the accepted forms, their fields, canonical names and the errors; a
// scheme checked against a model's layer widths.
#include <gtest/gtest.h>

#include "kernel_test_util.hpp"
#include "quant/ptq.hpp"
#include "quant/scheme.hpp"
#include "support/error_of.hpp"

namespace quopt {
namespace {

using testing::expect_error;

TEST(QuantScheme, ParsesTheStudySchemes) {
  struct Want {
    const char* name;
    QuantMethod method;
    int wbits, abits;
    std::int64_t group;
    const char* granularity;
  };
  for (const Want& w :
       {Want{"rtn-w4a4", QuantMethod::Rtn, 4, 4, 0, "row"}, Want{"rtn-w4", QuantMethod::Rtn, 4, 0, 0, "row"},
        Want{"gptq-w4", QuantMethod::Gptq, 4, 0, 0, "row"},
        Want{"gptq-w4a4", QuantMethod::Gptq, 4, 4, 0, "row"},
        Want{"rtn-w4g128a8", QuantMethod::Rtn, 4, 8, 128, "group"},
        Want{"gptq-w2g64", QuantMethod::Gptq, 2, 0, 64, "group"},
        Want{"rtn-w8a8", QuantMethod::Rtn, 8, 8, 0, "row"}}) {
    const QuantScheme s = parse_quant_scheme(w.name);
    EXPECT_EQ(s.method, w.method) << w.name;
    EXPECT_EQ(s.weight_bits, w.wbits) << w.name;
    EXPECT_EQ(s.act_bits, w.abits) << w.name;
    EXPECT_EQ(s.group_size, w.group) << w.name;
    EXPECT_EQ(s.name, w.name);
    EXPECT_EQ(format_quant_scheme(s), w.name);
    EXPECT_STREQ(quant_granularity(s), w.granularity);
    EXPECT_STREQ(quant_method_name(s.method),
                 std::string(w.name).substr(0, std::string(w.name).find('-')).c_str());
  }
}

TEST(QuantScheme, ErrorsNameTheBadPartAndListTheForms) {
  const std::string forms = "accepted forms: <method>-w<bits>[g<group>][a<bits>]";
  expect_error([] { parse_quant_scheme("awq-w4"); }, {"'awq-w4'", "unknown method 'awq'", forms});
  expect_error([] { parse_quant_scheme("RTN-W4A4"); }, {"unknown method 'RTN'", "lower case"});
  expect_error([] { parse_quant_scheme("rtn"); }, {"missing '-'", forms});
  expect_error([] { parse_quant_scheme("rtn-a4"); }, {"expected 'w<bits>'", "'a4'"});
  expect_error([] { parse_quant_scheme("rtn-w9"); }, {"weight bits 9 is out of range (2..8)"});
  expect_error([] { parse_quant_scheme("rtn-w1a4"); }, {"weight bits 1 is out of range"});
  expect_error([] { parse_quant_scheme("gptq-w4a16"); }, {"activation bits 16 is out of range"});
  expect_error([] { parse_quant_scheme("rtn-w4a"); }, {"expected a number", "activation bits"});
  expect_error([] { parse_quant_scheme("rtn-w"); }, {"expected a number", "weight bits"});
  expect_error([] { parse_quant_scheme("rtn-w4x"); }, {"unexpected 'x'"});
  expect_error([] { parse_quant_scheme("rtn-w4a4g128"); }, {"unexpected 'g128'"});
  expect_error([] { parse_quant_scheme("rtn-w04"); }, {"leading zero"});
  expect_error([] { parse_quant_scheme("rtn-w4g0"); }, {"group size must be positive"});
  expect_error([] { parse_quant_scheme("rtn-w4g"); }, {"expected a number", "group size"});
  expect_error([] { parse_quant_scheme("rtn-w4g99999999999"); }, {"too large"});
  expect_error([] { parse_quant_scheme(""); }, {"missing '-'"});
}

// A group size must divide the input width of every selected block linear: d_model for attn_q/k/v and
// mlp_up/gate, the attention width for attn_o, the MLP width for mlp_down.
TEST(QuantScheme, SchemeMustFitTheSelectedLayers) {
  ModelConfig m;
  m.d_model = 32;
  m.n_layers = 2;
  m.n_heads = 2;
  m.mlp_ratio = 4.0;  // MLP width 128
  const std::vector<std::string> all = {"attn_q", "attn_k",   "attn_v",  "attn_o",
                                        "mlp_up", "mlp_gate", "mlp_down"};
  for (const char* ok : {"rtn-w4", "rtn-w4a4", "rtn-w4g32", "gptq-w4g16a8", "rtn-w4g1"})
    EXPECT_NO_THROW(check_scheme_fits(parse_quant_scheme(ok), m, all)) << ok;
  const std::string e =
      quopt::testing::error_of([&] { check_scheme_fits(parse_quant_scheme("rtn-w4g64"), m, all); });
  EXPECT_NE(e.find("'rtn-w4g64': group size 64 does not divide the 32 input columns of block.00/attn_q"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("divisors of 32, e.g. 1, 2, 4, 8, 16, 32"), std::string::npos) << e;
  // Only mlp_down selected: its 128 columns take groups of 64.
  EXPECT_NO_THROW(check_scheme_fits(parse_quant_scheme("rtn-w4g64"), m, {"mlp_down"}));
  const std::string d =
      quopt::testing::error_of([&] { check_scheme_fits(parse_quant_scheme("rtn-w4g48"), m, {"mlp_down"}); });
  EXPECT_NE(d.find("128 input columns of block.00/mlp_down"), std::string::npos) << d;
}

}  // namespace
}  // namespace quopt
