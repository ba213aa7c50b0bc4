#pragma once
// Pseudo-English text for the tokenizer and evaluation tests: a vocabulary of words built from syllables,
// drawn with a skewed (Zipf-like) frequency, deterministic in the seed.
#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.hpp"

namespace quopt::testing {

class TextGen {
 public:
  // `n_words` words of 1-3 syllables from Rng(seed, stream); word() picks index floor(n_words * u^power),
  // u uniform, so small indices are much more frequent.
  TextGen(std::uint64_t seed, std::uint64_t stream, int n_words, int power)
      : rng_(seed, stream), n_words_(n_words), power_(power) {
    const char* syll[] = {"ka", "lo",  "mi", "ter", "an", "dis", "ro",
                          "ve", "sun", "pe", "tha", "or", "qui", "bel"};
    const std::size_t ns = sizeof(syll) / sizeof(syll[0]);
    for (int w = 0; w < n_words; ++w) {
      std::string word;
      const int n = 1 + static_cast<int>(rng_.below(3));
      for (int k = 0; k < n; ++k) word += syll[rng_.below(ns)];
      words_.push_back(word);
    }
  }
  std::string word() {
    const double u = rng_.uniform();
    double x = 1.0;
    for (int k = 0; k < power_; ++k) x *= u;
    return words_[static_cast<std::size_t>(static_cast<double>(n_words_) * x)];
  }
  // n words joined by spaces.
  std::string words(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) {
      if (i) s += ' ';
      s += word();
    }
    return s;
  }
  // 4-11 words and a full stop.
  std::string sentence() { return words(4 + static_cast<int>(rng_.below(8))) + "."; }
  // 5-12 words ending in ',' (one in four) or '.'.
  std::string line() {
    std::string s = words(5 + static_cast<int>(rng_.below(8)));
    s += rng_.below(4) == 0 ? "," : ".";
    return s;
  }
  // 1-3 lines joined with '\n'.
  std::string document() {
    std::string d = line();
    const int extra = static_cast<int>(rng_.below(3));
    for (int i = 0; i < extra; ++i) {
      d += '\n';
      d += line();
    }
    return d;
  }
  std::uint64_t below(std::uint64_t n) { return rng_.below(n); }

 private:
  Rng rng_;
  int n_words_, power_;
  std::vector<std::string> words_;
};

}  // namespace quopt::testing
