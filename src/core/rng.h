// Counter-based random numbers: value = hash(seed, stream, counter). Any element of any stream
// can be drawn independently, so initialization, sampling and shuffles are reproducible and
// independent of thread count and call order.
#pragma once

#include <cmath>
#include <cstdint>

namespace dsv3 {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed, uint64_t stream = 0)
      : key_(splitmix64(splitmix64(seed) ^ (stream * 0xD1B54A32D192ED03ull))) {}

  uint64_t bits(uint64_t counter) const { return splitmix64(key_ ^ splitmix64(counter)); }
  // Uniform in [0, 1) with 24 random bits (exactly representable in f32).
  float uniform(uint64_t counter) const { return float(bits(counter) >> 40) * 0x1.0p-24f; }
  // Standard normal (Box-Muller on two sub-counters).
  float normal(uint64_t counter) const {
    double u1 = (double(bits(2 * counter) >> 11) + 0.5) * 0x1.0p-53;
    double u2 = double(bits(2 * counter + 1) >> 11) * 0x1.0p-53;
    return float(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }

  // Sequential convenience interface over the same counter space.
  uint64_t next_bits() { return bits(counter_++); }
  float next_uniform() { return uniform(counter_++); }
  float next_normal() { return normal(counter_++); }
  uint64_t counter() const { return counter_; }
  void set_counter(uint64_t c) { counter_ = c; }

 private:
  uint64_t key_;
  uint64_t counter_ = 0;
};

}  // namespace dsv3
