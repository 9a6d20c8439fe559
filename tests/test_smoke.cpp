#include <gtest/gtest.h>

#include "scb/philox.hpp"

TEST(Philox, ZeroVector) {
  const scb::Philox4 r = scb::philox4x32_10(scb::Philox4{{0, 0, 0, 0}}, 0, 0);
  EXPECT_EQ(r.v[0], 0x6627e8d5u);
}
