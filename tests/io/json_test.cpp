#include "io/json.h"

#include <gtest/gtest.h>

namespace dsv3 {
namespace {

TEST(JsonTest, ParsesAndReportsSyntaxErrorsWithSource) {
  auto ok = parse_json(R"({"a": 1})", "x.json");
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ(ok.value()["a"], 1);
  auto bad = parse_json(R"({"a": )", "x.json");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.message().find("x.json: invalid JSON"), std::string::npos) << bad.message();
  EXPECT_FALSE(parse_json("", "e.json").is_ok());
  // A repeated key in one object is an error at any depth; the same key in sibling or nested
  // objects is not.
  auto dup = parse_json(R"({"a": {"k": 1, "k": 2}})", "d.json");
  ASSERT_FALSE(dup.is_ok());
  EXPECT_NE(dup.message().find("d.json: invalid JSON: the key \"k\" appears twice"), std::string::npos)
      << dup.message();
  EXPECT_FALSE(parse_json(R"({"a": 1, "b": 2, "a": 3})", "d.json").is_ok());
  EXPECT_TRUE(parse_json(R"({"k": {"k": 1}, "j": [{"k": 1}, {"k": 2}], "m": {"k": 3}})", "d.json").is_ok());
  EXPECT_FALSE(parse_json("\xff\xfe", "u.json").is_ok());
}

TEST(JsonTest, TypedGettersNameTheFieldAndValue) {
  Json j = Json::parse(R"({"hidden_size": "abc", "n": 3, "f": 2, "half": 2.5, "b": true, "nul": null,
                           "sub": {"factor": "x"}})");
  JsonObject o(j, "config.json");
  auto r = o.get_int("hidden_size");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.message(), "config.json: field 'hidden_size' must be an integer, got \"abc\"");
  EXPECT_EQ(o.get_int("n").value(), 3);
  EXPECT_EQ(o.get_number("f").value(), 2.0);  // ints are read as floats
  EXPECT_FALSE(o.get_int("half").is_ok());
  EXPECT_EQ(o.get_int("nul", 7).value(), 7);  // null means "use the default"
  EXPECT_EQ(o.get_int("absent", 9).value(), 9);
  EXPECT_EQ(o.get_int("absent").message(), "config.json: missing required field 'absent'");
  EXPECT_TRUE(o.get_bool("b", false).value());
  EXPECT_FALSE(o.get_bool("n", false).is_ok());
  auto sub = o.get_object("sub");
  ASSERT_TRUE(sub.is_ok() && sub.value().has_value());
  auto f = sub.value()->get_number("factor");
  EXPECT_EQ(f.message(), "config.json: field 'sub.factor' must be a number, got \"x\"");
  EXPECT_FALSE(o.get_object("n").is_ok());
  EXPECT_FALSE(o.get_object("nul").value().has_value());
}

TEST(JsonTest, IntegralFloatsAreIntegersWithinRange) {
  EXPECT_EQ(json_as_int(Json(4096.0)), 4096);
  EXPECT_EQ(json_as_int(Json(1.5)), std::nullopt);
  EXPECT_EQ(json_as_int(Json(1e300)), std::nullopt);
  EXPECT_EQ(json_as_int(Json(uint64_t(1) << 63)), std::nullopt);
  EXPECT_EQ(json_as_int(Json("3")), std::nullopt);
}

TEST(JsonTest, ExcerptIsBoundedEvenForDeepNesting) {
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  auto j = parse_json(deep, "deep.json");
  if (j.is_ok()) {
    std::string s = json_excerpt(j.value());
    EXPECT_LE(s.size(), 70u);
  }
  std::string long_str = "\"" + std::string(1000, 'x') + "\"";
  EXPECT_LE(json_excerpt(Json::parse(long_str)).size(), 70u);
}

}  // namespace
}  // namespace dsv3
