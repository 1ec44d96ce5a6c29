// tests/unit/spool/spool_test.cc — tests gateway/spool/spool.cc: the memory path, the spill
// to an unlinked temporary file, reading back in chunks, reuse after clear(), write failures
// (RLIMIT_FSIZE stands in for a full disk) and prepare_spool_dir.
#include "spool/spool.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace mailgate::spool {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class SpoolTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::path(testing::TempDir()) / "spool_test.XXXXXX").string();
    std::vector<char> name(pattern.begin(), pattern.end());
    name.push_back('\0');
    ASSERT_NE(::mkdtemp(name.data()), nullptr) << std::strerror(errno);
    dir_ = name.data();
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }

  size_t entries() const {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_)) ++n;
    return n;
  }

  fs::path dir_;
};

std::string read_all(const Spool& spool, size_t chunk_size, size_t* chunks = nullptr) {
  Spool::Reader reader(spool);
  std::string all, chunk;
  size_t n = 0;
  while (reader.next(chunk, chunk_size)) {
    EXPECT_LE(chunk.size(), chunk_size);
    EXPECT_FALSE(chunk.empty());
    all += chunk;
    ++n;
  }
  if (chunks != nullptr) *chunks = n;
  return all;
}

std::string random_bytes(std::mt19937& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

TEST_F(SpoolTest, EmptySpool) {
  Spool spool(dir_, 1024);
  EXPECT_TRUE(spool.in_memory());
  EXPECT_EQ(spool.size(), 0u);
  EXPECT_FALSE(spool.error());
  Spool::Reader reader(spool);
  std::string chunk = "stale";
  EXPECT_FALSE(reader.next(chunk));
  EXPECT_EQ(chunk, "");
}

TEST_F(SpoolTest, MemoryPath) {
  Spool spool(dir_, 1024);
  EXPECT_TRUE(spool.write("hello "));
  EXPECT_TRUE(spool.write("world\r\n"));
  EXPECT_TRUE(spool.write(""));
  EXPECT_TRUE(spool.in_memory());
  EXPECT_EQ(spool.size(), 13u);
  EXPECT_EQ(read_all(spool, 64 * 1024), "hello world\r\n");
  size_t chunks = 0;
  EXPECT_EQ(read_all(spool, 4, &chunks), "hello world\r\n");
  EXPECT_EQ(chunks, 4u);
  EXPECT_EQ(entries(), 0u);  // nothing touched the directory
}

TEST_F(SpoolTest, ExactlyTheMemoryLimitStaysInMemory) {
  Spool spool(dir_, 10);
  EXPECT_TRUE(spool.write("12345"));
  EXPECT_TRUE(spool.write("67890"));
  EXPECT_TRUE(spool.in_memory());
  EXPECT_TRUE(spool.write("x"));
  EXPECT_FALSE(spool.in_memory());
  EXPECT_EQ(read_all(spool, 3), "1234567890x");
}

TEST_F(SpoolTest, SpillsToAnUnlinkedFile) {
  Spool spool(dir_, 16);
  EXPECT_TRUE(spool.write("0123456789"));
  EXPECT_TRUE(spool.in_memory());
  EXPECT_TRUE(spool.write("abcdefghij"));
  EXPECT_FALSE(spool.in_memory());
  EXPECT_TRUE(spool.write("KLMNOP"));
  EXPECT_EQ(spool.size(), 26u);
  EXPECT_FALSE(spool.error());
  EXPECT_EQ(read_all(spool, 64 * 1024), "0123456789abcdefghijKLMNOP");
  size_t chunks = 0;
  EXPECT_EQ(read_all(spool, 5, &chunks), "0123456789abcdefghijKLMNOP");
  EXPECT_EQ(chunks, 6u);
  // The file has no name: a crash leaves nothing behind.
  EXPECT_EQ(entries(), 0u);
}

TEST_F(SpoolTest, ZeroMemoryLimitGoesStraightToTheFile) {
  Spool spool(dir_, 0);
  EXPECT_TRUE(spool.write("x"));
  EXPECT_FALSE(spool.in_memory());
  EXPECT_EQ(read_all(spool, 1), "x");
}

TEST_F(SpoolTest, LargeMessageReadBackInChunksEqualsWhatWasWritten) {
  std::mt19937 rng(7);
  for (size_t limit : {size_t{0}, size_t{1000}, size_t{64 * 1024}, size_t{8 << 20}}) {
    Spool spool(dir_, limit);
    std::string written;
    std::uniform_int_distribution<size_t> piece(0, 20000);
    while (written.size() < 3 * 1024 * 1024) {
      std::string bytes = random_bytes(rng, piece(rng));
      ASSERT_TRUE(spool.write(bytes));
      written += bytes;
    }
    EXPECT_EQ(spool.size(), written.size());
    EXPECT_EQ(spool.in_memory(), written.size() <= limit);
    for (size_t chunk : {size_t{1} << 16, size_t{4093}, size_t{1} << 22}) {
      EXPECT_TRUE(read_all(spool, chunk) == written) << "limit " << limit << " chunk " << chunk;
    }
    // Two readers are independent.
    Spool::Reader a(spool), b(spool);
    std::string ca, cb;
    ASSERT_TRUE(a.next(ca, 100));
    ASSERT_TRUE(a.next(ca, 100));
    ASSERT_TRUE(b.next(cb, 100));
    EXPECT_EQ(ca, written.substr(100, 100));
    EXPECT_EQ(cb, written.substr(0, 100));
  }
}

TEST_F(SpoolTest, ReadingWhileWriting) {
  Spool spool(dir_, 4);
  Spool::Reader reader(spool);
  std::string chunk;
  EXPECT_FALSE(reader.next(chunk));
  EXPECT_TRUE(spool.write("abcdef"));
  ASSERT_TRUE(reader.next(chunk, 3));
  EXPECT_EQ(chunk, "abc");
  EXPECT_TRUE(spool.write("gh"));
  ASSERT_TRUE(reader.next(chunk));
  EXPECT_EQ(chunk, "defgh");
  EXPECT_FALSE(reader.next(chunk));
}

TEST_F(SpoolTest, ClearForReuse) {
  Spool spool(dir_, 8);
  EXPECT_TRUE(spool.write("first message, spilled"));
  EXPECT_FALSE(spool.in_memory());
  spool.clear();
  EXPECT_TRUE(spool.in_memory());
  EXPECT_EQ(spool.size(), 0u);
  EXPECT_EQ(read_all(spool, 100), "");
  EXPECT_TRUE(spool.write("second"));
  EXPECT_TRUE(spool.in_memory());
  EXPECT_EQ(read_all(spool, 100), "second");
  spool.clear();
  EXPECT_TRUE(spool.write("third, spilled again"));
  EXPECT_FALSE(spool.in_memory());
  EXPECT_EQ(read_all(spool, 7), "third, spilled again");
  EXPECT_EQ(entries(), 0u);
}

TEST_F(SpoolTest, ClearClosesTheFile) {
  auto open_fds = [] {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
    return n;
  };
  if (!fs::exists("/proc/self/fd")) GTEST_SKIP() << "no /proc";
  size_t before = open_fds();
  {
    Spool spool(dir_, 0);
    for (int i = 0; i < 5; ++i) {
      EXPECT_TRUE(spool.write("spilled"));
      EXPECT_EQ(open_fds(), before + 1);
      spool.clear();
      EXPECT_EQ(open_fds(), before);
    }
    EXPECT_TRUE(spool.write("left open"));
  }
  EXPECT_EQ(open_fds(), before);  // the destructor closes it
}

TEST_F(SpoolTest, SpillFailsWhenTheDirectoryIsGone) {
  Spool spool(dir_ / "missing", 4);
  EXPECT_TRUE(spool.write("abc"));
  EXPECT_FALSE(spool.write("defgh"));
  EXPECT_EQ(spool.error(), std::errc::no_such_file_or_directory);
  EXPECT_FALSE(spool.write("x"));  // refused until clear()
  EXPECT_EQ(spool.size(), 3u);
  spool.clear();
  EXPECT_FALSE(spool.error());
  EXPECT_TRUE(spool.write("abc"));
}

// A full disk, simulated with RLIMIT_FSIZE: write(2) fails with EFBIG past the limit (the
// SIGXFSZ it would raise is ignored for the duration).
TEST_F(SpoolTest, WriteFailureIsReportedAndSticks) {
  struct rlimit saved {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  struct sigaction ignore = {};
  struct sigaction old_action = {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &old_action), 0);
  struct rlimit small = saved;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);

  Spool spool(dir_, 1024);
  bool wrote_first = spool.write(std::string(32 * 1024, 'a'));
  bool wrote_second = spool.write(std::string(64 * 1024, 'b'));
  std::error_code error = spool.error();
  bool wrote_third = spool.write("c");

  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::sigaction(SIGXFSZ, &old_action, nullptr);

  EXPECT_TRUE(wrote_first);
  EXPECT_FALSE(wrote_second);
  EXPECT_EQ(error, std::errc::file_too_large);
  EXPECT_FALSE(wrote_third);
  EXPECT_EQ(spool.size(), 32u * 1024);
  spool.clear();
  EXPECT_FALSE(spool.error());
  EXPECT_TRUE(spool.write(std::string(100 * 1024, 'd')));
  EXPECT_EQ(read_all(spool, 1 << 16), std::string(100 * 1024, 'd'));
}

TEST_F(SpoolTest, IsADataSinkForTheDecoder) {
  Spool spool(dir_, 16);
  smtp::DataDecoder decoder(smtp::DataDecoder::Options{});
  decoder.reset();
  std::string input = "Subject: spool\r\n\r\n..stuffed\r\nbody\r\n.\r\n";
  EXPECT_EQ(decoder.feed(input, spool), input.size());
  EXPECT_TRUE(decoder.done());
  EXPECT_FALSE(decoder.sink_failed());
  EXPECT_EQ(read_all(spool, 10), "Subject: spool\r\n\r\n.stuffed\r\nbody\r\n");
}

// ---------------------------------------------------------------------------------------------
// prepare_spool_dir

TEST_F(SpoolTest, PrepareCreatesMissingDirectories) {
  fs::path nested = dir_ / "a" / "b" / "c";
  EXPECT_EQ(prepare_spool_dir(nested), "");
  EXPECT_TRUE(fs::is_directory(nested));
  EXPECT_EQ(prepare_spool_dir(nested), "");  // existing is fine
}

TEST_F(SpoolTest, PrepareRefusesAPathUnderARegularFile) {
  fs::path file = dir_ / "file";
  std::ofstream(file) << "x";
  fs::path under = file / "spool";
  std::string message = prepare_spool_dir(under);
  EXPECT_EQ(message, "spool directory " + under.string() + ": Not a directory");
}

TEST_F(SpoolTest, PrepareRefusesARegularFile) {
  fs::path file = dir_ / "file";
  std::ofstream(file) << "x";
  std::string message = prepare_spool_dir(file);
  EXPECT_EQ(message.rfind("spool directory " + file.string() + ": ", 0), 0u) << message;
}

TEST_F(SpoolTest, PrepareRefusesAnUnwritableDirectory) {
  if (::geteuid() == 0) GTEST_SKIP() << "root can write anywhere";
  fs::path locked = dir_ / "locked";
  fs::create_directory(locked);
  fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
  EXPECT_EQ(prepare_spool_dir(locked),
            "spool directory " + locked.string() + ": Permission denied");
}

}  // namespace
}  // namespace mailgate::spool
