// spool/spool.cc — see spool.h. Owns the message buffer: a std::string up to memory_limit,
// then an unlinked temporary file (O_TMPFILE, else mkostemp + unlink) read back with pread.
// Errors are returned as values (error()), never thrown: this is the data path.
#include "spool/spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "obs/metrics.h"

namespace mailgate::spool {
namespace {

std::error_code errno_code(int e) { return std::error_code(e, std::generic_category()); }

// Writes all of `bytes`, retrying short writes and EINTR. Returns 0 or an errno value.
int write_all(int fd, std::string_view bytes) {
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;  // cannot happen for a regular file; do not spin
    p += n;
    left -= static_cast<size_t>(n);
  }
  return 0;
}

// Opens an anonymous temporary file in `dir`: O_TMPFILE where the file system supports it,
// else a named file that is unlinked at once. Returns the descriptor or -errno.
int open_temporary(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  std::string pattern = (dir / "mailgate-spool.XXXXXX").string();
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) return -errno;
  if (::unlink(name.data()) != 0) {
    int e = errno;
    ::close(fd);
    return -e;
  }
  return fd;
}

}  // namespace

Spool::Spool(std::filesystem::path dir, size_t memory_limit)
    : dir_(std::move(dir)), memory_limit_(memory_limit) {}

Spool::~Spool() {
  if (fd_ >= 0) ::close(fd_);
}

void Spool::clear() {
  memory_.clear();  // keeps the capacity for the next message
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  size_ = 0;
  error_.clear();
}

bool Spool::spill() {
  int fd = open_temporary(dir_);
  if (fd < 0) {
    error_ = errno_code(-fd);
    return false;
  }
  fd_ = fd;
  obs::metrics().spool_files.inc();
  if (int e = write_all(fd_, memory_); e != 0) {
    error_ = errno_code(e);
    return false;
  }
  memory_.clear();
  return true;
}

bool Spool::write(std::string_view bytes) {
  if (error_) return false;
  if (fd_ < 0) {
    if (bytes.size() <= memory_limit_ - std::min(memory_limit_, memory_.size())) {
      memory_.append(bytes);
      size_ += bytes.size();
      obs::metrics().spool_bytes.add(static_cast<int64_t>(bytes.size()));
      return true;
    }
    if (!spill()) return false;
  }
  if (int e = write_all(fd_, bytes); e != 0) {
    error_ = errno_code(e);
    return false;
  }
  size_ += bytes.size();
  obs::metrics().spool_bytes.add(static_cast<int64_t>(bytes.size()));
  return true;
}

bool Spool::Reader::next(std::string& chunk, size_t max) {
  if (max == 0) max = 64 * 1024;  // a zero chunk size would never make progress
  chunk.clear();
  if (offset_ >= spool_.size_) return false;
  const size_t want = static_cast<size_t>(std::min<uint64_t>(max, spool_.size_ - offset_));
  if (spool_.fd_ < 0) {
    chunk.assign(spool_.memory_, static_cast<size_t>(offset_), want);
    offset_ += want;
    return true;
  }
  chunk.resize(want);
  size_t got = 0;
  while (got < want) {
    ssize_t n =
        ::pread(spool_.fd_, chunk.data() + got, want - got, static_cast<off_t>(offset_ + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      spool_.error_ = errno_code(errno);
      chunk.clear();
      return false;
    }
    if (n == 0) {  // the file is shorter than what was written: it was tampered with
      spool_.error_ = errno_code(EIO);
      chunk.clear();
      return false;
    }
    got += static_cast<size_t>(n);
  }
  offset_ += want;
  return true;
}

std::string prepare_spool_dir(const std::filesystem::path& dir) {
  auto failure = [&](const std::string& reason) {
    return "spool directory " + dir.string() + ": " + reason;
  };
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return failure(ec.message());
  if (!std::filesystem::is_directory(dir, ec)) {
    return failure(ec ? ec.message() : std::strerror(ENOTDIR));
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) return failure(std::strerror(errno));
  return {};
}

}  // namespace mailgate::spool
