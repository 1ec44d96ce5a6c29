// spool/spool.h — holds one message between end-of-data and the backend's final reply.
// Owns: message bytes in canonical form (CRLF lines, not dot-stuffed): in memory up to a
// bound, then in an unlinked temporary file in the spool directory (O_TMPFILE or mkstemp +
// unlink, so a crash leaves nothing behind). Buffers are kept between messages and reused.
// Must not touch: SMTP framing (dot-stuffing is the relay's job), sockets.
// Thread-safety: one spool per session; not shared. File I/O is blocking but local.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "smtp/data_decoder.h"

namespace mailgate::spool {

class Spool final : public smtp::DataSink {
 public:
  // `dir` must exist and be writable; `memory_limit` bytes stay in memory before spilling.
  Spool(std::filesystem::path dir, size_t memory_limit);
  ~Spool() override;
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Empties the spool for the next message (keeps the memory buffer's capacity; closes the
  // temporary file).
  void clear();

  // smtp::DataSink: appends. Returns false (and records error()) when the file cannot be
  // written, e.g. ENOSPC; later writes are refused until clear().
  bool write(std::string_view bytes) override;

  uint64_t size() const { return size_; }
  bool in_memory() const { return fd_ < 0; }
  std::error_code error() const { return error_; }

  // Reads the message from the start, in chunks of up to `max` bytes, into `chunk`
  // (replacing its contents). Returns false at the end or on error (see error()).
  class Reader {
   public:
    explicit Reader(const Spool& spool, uint64_t start = 0) : spool_(spool), offset_(start) {}
    bool next(std::string& chunk, size_t max = 64 * 1024);

   private:
    const Spool& spool_;
    uint64_t offset_ = 0;
  };

 private:
  friend class Reader;
  bool spill();  // moves memory_ to a new temporary file

  std::filesystem::path dir_;
  size_t memory_limit_;
  std::string memory_;
  int fd_ = -1;
  uint64_t size_ = 0;
  mutable std::error_code error_;
};

// Creates `dir` (and parents) when missing and checks it is a writable directory.
// Returns an error message naming the directory, or empty on success.
std::string prepare_spool_dir(const std::filesystem::path& dir);

}  // namespace mailgate::spool
