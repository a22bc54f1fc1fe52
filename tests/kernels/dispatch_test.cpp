// The dispatcher: both paths are selectable on this machine, and the forced portable path is what
// DSV3_KERNELS=portable gives at start-up (checked in a child process, since the choice is made
// once per process).
#include "kernels/dispatch.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include <unistd.h>

#include "kernels/kernel_paths.h"

namespace dsv3::kernels {
namespace {

TEST(KernelDispatch, SwitchesPaths) {
  testing::for_each_path([](KernelPath path) { EXPECT_EQ(kernel_path(), path); });
}

TEST(KernelDispatch, ThisMachineTestsBothPaths) {
  // The test machine has AVX2; if it ever does not, the AVX2 half of every kernel test is skipped
  // silently, so make that visible here.
  EXPECT_TRUE(cpu_supports_avx2()) << "AVX2 path not exercised on this machine";
}

TEST(KernelDispatch, EnvironmentForcesPortable) {
  if (std::getenv("DSV3_TEST_CHILD") != nullptr) {  // the child process started below
    EXPECT_EQ(kernel_path(), KernelPath::kPortable);
    return;
  }
  std::string exe(4096, '\0');
  const ssize_t len = readlink("/proc/self/exe", exe.data(), exe.size() - 1);
  ASSERT_GT(len, 0);
  exe.resize(size_t(len));
  const std::string run = "DSV3_KERNELS=portable DSV3_TEST_CHILD=1 '" + exe +
                          "' --gtest_filter=KernelDispatch.EnvironmentForcesPortable > /dev/null 2>&1";
  EXPECT_EQ(std::system(run.c_str()), 0);
}

TEST(KernelDispatch, DefaultIsTheWidestPathAndEnvironmentNarrowsIt) {
  if (std::getenv("DSV3_TEST_CHILD") != nullptr) {
    const char* want = std::getenv("DSV3_KERNELS");
    const KernelPath widest = cpu_supports_avx512() ? KernelPath::kAvx512
                              : cpu_supports_avx2() ? KernelPath::kAvx2
                                                    : KernelPath::kPortable;
    EXPECT_EQ(kernel_path(), want != nullptr && std::string(want) == "avx2" && widest != KernelPath::kPortable
                                 ? KernelPath::kAvx2
                                 : widest);
    return;
  }
  std::string exe(4096, '\0');
  const ssize_t len = readlink("/proc/self/exe", exe.data(), exe.size() - 1);
  ASSERT_GT(len, 0);
  exe.resize(size_t(len));
  for (const char* env : {"env -u DSV3_KERNELS", "DSV3_KERNELS=avx2"}) {
    const std::string run = std::string(env) + " DSV3_TEST_CHILD=1 '" + exe +
                            "' --gtest_filter=KernelDispatch.DefaultIsTheWidestPathAndEnvironmentNarrowsIt > /dev/null 2>&1";
    EXPECT_EQ(std::system(run.c_str()), 0) << env;
  }
}

}  // namespace
}  // namespace dsv3::kernels
