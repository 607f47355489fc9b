// What the file readers' mutation tests share (tests/test_npy.cpp,
// tests/test_safetensors.cpp): run a parser on a mutated file from an exactly sized
// heap block, so that AddressSanitizer sees any read past the end, and sort the
// result into parsed, refused with an attn::Error that names the function and the
// source, or failed.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "attn/error.hpp"

namespace attn::test {

enum class Outcome { parsed, refused, failed };

// The problem in an attn::Error's message, after "[op] source: ".
inline std::string problem_of(const std::string& message, const std::string& prefix) {
  return message.rfind(prefix, 0) == 0 ? message.substr(prefix.size()) : "(no prefix) " + message;
}

// parse(span) on a copy of `bytes`; on a result, check(result) adds its own
// failures; on an attn::Error whose message starts with `prefix`,
// refused(problem) does. Any other exception, or a message without the prefix,
// fails.
template <class Parse, class Check, class Refused>
Outcome parse_mutant(const std::vector<std::uint8_t>& bytes, const std::string& what, const std::string& prefix,
                     Parse parse, Check check, Refused refused) {
  const std::size_t n = bytes.size();
  const std::unique_ptr<std::uint8_t[]> block(new std::uint8_t[n == 0 ? 1 : n]);
  if (n > 0) std::memcpy(block.get(), bytes.data(), n);
  try {
    const auto result = parse(std::span<const std::uint8_t>(block.get(), n));
    check(result);
    return ::testing::Test::HasFailure() ? Outcome::failed : Outcome::parsed;
  } catch (const attn::Error& e) {
    if (std::string(e.what()).rfind(prefix, 0) != 0) {
      ADD_FAILURE() << what << ": message without its function and source: " << e.what();
      return Outcome::failed;
    }
    refused(problem_of(e.what(), prefix));
    return ::testing::Test::HasFailure() ? Outcome::failed : Outcome::refused;
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": threw a non-attn exception: " << e.what();
    return Outcome::failed;
  }
}

}  // namespace attn::test
