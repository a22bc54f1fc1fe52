// Fuzzes the tokenizer with arbitrary bytes on the small trained fixture tokenizer
// (tests/golden/tokenizer/trained): encode must never crash, decode(encode(x)) must equal x with
// invalid UTF-8 repaired, pre-tokens must tile the text, and streaming decode of arbitrary ids
// (in range or not) must equal decode.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "infer/sampler.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace {

const dsv3::Tokenizer& tokenizer() {
  static const dsv3::Result<dsv3::Tokenizer> tok =
      dsv3::Tokenizer::load(std::string(DSV3_TEST_DATA_DIR) + "/golden/tokenizer/trained");
  if (!tok.is_ok()) {
    std::fprintf(stderr, "tokenizer_fuzz: %s\n", tok.message().c_str());
    std::abort();
  }
  return tok.value();
}

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "tokenizer_fuzz: property failed: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const dsv3::Tokenizer& tok = tokenizer();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string repaired = dsv3::utf8_repair(text);
  require(dsv3::utf8_is_valid(repaired), "repair yields valid UTF-8");

  const auto ids = tok.encode(text, size % 2 == 0);
  for (int32_t id : ids) require(id >= 0 && size_t(id) < tok.vocab_size(), "ids in range");
  const std::string back = tok.decode(ids, /*skip_special=*/false);
  const std::string bos = size % 2 == 0 ? std::string(tok.token_bytes(tok.bos_id())) : std::string();
  require(back == bos + repaired, "decode(encode(x)) == repair(x)");

  std::string tiled;
  for (const auto& piece : tok.pre_tokenize(text)) tiled += piece;
  require(tiled == repaired, "pre-tokens tile the text");

  // The bytes reinterpreted as ids, including ids without a token and negative ones.
  std::vector<int32_t> raw_ids;
  for (size_t i = 0; i + 1 < size; i += 2) raw_ids.push_back(int32_t((data[i] << 8 | data[i + 1]) % 1200) - 100);
  dsv3::StreamDecoder stream(tok);
  std::string streamed;
  for (int32_t id : raw_ids) streamed += stream.push(id);
  streamed += stream.flush();
  require(streamed == tok.decode(raw_ids), "stream decode == decode");

  const auto stop = dsv3::find_stop(repaired, {"ab", "\n\n", "<｜"});
  require(stop.safe_length <= repaired.size(), "stop safe length in range");
  return 0;
}
