// The test binaries' main: doctest's, plus one rule. A run asked for named
// test cases (ctest runs each discovered case as --test-case=NAME) fails when
// it ran none: a name that does not match (CMake once split names at ';')
// must not pass silently.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <string_view>

namespace {

struct ran_counter : doctest::IReporter {
  static inline int started = 0;
  explicit ran_counter(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData&) override { ++started; }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
REGISTER_LISTENER("ran_counter", 1, ran_counter);

}  // namespace

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int rc = context.run();
  if (context.shouldExit()) return rc;
  bool named = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    named = named || a.starts_with("--test-case=") || a.starts_with("-tc=");
  }
  if (rc == 0 && named && ran_counter::started == 0) {
    std::fprintf(stderr, "no test case matched the name given\n");
    return 1;
  }
  return rc;
}
